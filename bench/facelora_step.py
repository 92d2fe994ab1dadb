"""facelora's training step for bench/train_step.py's workers: train()'s own step on an
SD1.5-architecture model with random weights (or the tiny model), with the network variants and
speed-ups the benchmark compares."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

RANK, ALPHA = 128, 64
TINY_RANK = 4  # the tiny model's layers have 32 and 64 channels
CAPTION = "photo of ohwx man"

# facelora's speed-ups that --without can take away, to measure each one's effect
WITHOUT = ("host-memory", "lora-forms", "onednn-linear")
# the variants --networks sets next to plain LoRA: (network_module, network_args, masked_loss),
# with the conv rank of the shared kohya_ss LoCon preset (32). "locon" is what kohya_ss' LoCon
# preset trains (LoRA_type "LyCORIS/LoCon": lycoris.kohya, algo=locon); "kohya-locon" is
# sd-scripts' own networks.lora with conv_dim. "dora" sets no conv_dim, so lycoris adapts the 3x3
# convolutions at network_dim too, as it does for a user. "masked" is plain LoRA with
# masked_loss and a head-shaped mask.
NETWORKS = {
    "lora": ("networks.lora", [], False),
    "kohya-locon": ("networks.lora", ["conv_dim=32", "conv_alpha=16"], False),
    "locon": ("lycoris.kohya", ["algo=locon", "conv_dim=32", "conv_alpha=16"], False),
    "loha": ("lycoris.kohya", ["algo=loha", "conv_dim=32", "conv_alpha=16"], False),
    "lokr": ("lycoris.kohya", ["algo=lokr", "conv_dim=32", "conv_alpha=16"], False),
    "dora": ("lycoris.kohya", ["algo=lora", "dora_wd=True"], False),
    "masked": ("networks.lora", [], True),
}


def head_mask(size: int) -> torch.Tensor:
    """A mask as prepare's head masks are: 1 on an ellipse around the middle, 0.25 elsewhere."""
    import torch

    y, x = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    return torch.where((x / 0.45) ** 2 + (y / 0.6) ** 2 <= 1, 1.0, 0.25)[None]


def sd15_random():
    """An SD1.5-architecture model with random weights (no VAE: the latents are cached; train()
    keeps the VAE for samples, it takes no part in a step), drawn as N(0, 0.02) on an empty model
    (the modules' own initialisation of 0.98 G parameters takes minutes on a loaded machine)."""
    import torch
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from facelora.model.sdmodel import SD15_DIR, SDModel, noise_scheduler, read_config, shipped_tokenizer

    torch.manual_seed(0)
    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(read_config(SD15_DIR, "unet"))
        te = CLIPTextModel(CLIPTextConfig.from_json_file(SD15_DIR / "text_encoder" / "config.json"))
    for part in (unet, te):
        part.to_empty(device="cpu")
        for p in part.parameters():
            p.data.normal_(0, 0.02)
        for b in part.buffers():  # CLIP's position ids
            b.copy_(torch.arange(b.shape[-1]).expand_as(b))
    return SDModel(unet, te, None, shipped_tokenizer(), noise_scheduler(), name="random-sd15")


def facelora_step(size: int, checkpointing: bool, precision: str, device: str, unet_only: bool,
                  compile_unet: bool, channels_last: bool | None, without: str | None = None,
                  network: str = "lora", optimizer: str = "AdamW", tiny: bool = False):
    """train()'s own step on random SD1.5 weights (the tiny model with tiny): the model made ready by train.step's
    prepare_network, make_optimizer and make_scheduler prepared by accelerate, then
    train.step.Stepper.run (autocast, loss, backward, gradient clipping at max_grad_norm 1.0, the
    NaN guard, AdamW and the scheduler), inside FreedMemoryReuse as train() runs it. Returns the
    step function and the network.
    without="host-memory": malloc's thresholds left alone; "lora-forms": every LoRA module
    computed as Kohya writes it, org(x) + up(down(x)) * scale (no merged weight, no fused add,
    1x1 convolutions as convolutions); "onednn-linear": fp32 Linear products through MKL
    (PyTorch's default) instead of oneDNN."""
    import torch

    from facelora.config import TrainConfig
    from facelora.model import cpu_linear
    from facelora.model.tiny import build_tiny
    from facelora.networks.lora import LoRAModule
    from facelora.train.data import Batch
    from facelora.train.host_memory import FreedMemoryReuse
    from facelora.train.optim import make_optimizer, make_scheduler
    from facelora.train.state import LoopState
    from facelora.train.step import Stepper, make_accelerator, prepare_network

    model = build_tiny() if tiny else sd15_random()
    unet = model.unet
    module, args, masked = NETWORKS[network]
    cfg = TrainConfig(network_dim=TINY_RANK if tiny else RANK, network_alpha=TINY_RANK / 2 if tiny else ALPHA,
                      optimizer_type=optimizer, train_batch_size=1,
                      resolution=f"{size},{size}", mixed_precision={"fp32": "no"}.get(precision, precision),
                      gradient_checkpointing=checkpointing, network_train_unet_only=unet_only,
                      torch_compile=compile_unet, cache_latents=True, network_module=module,
                      network_args=args, masked_loss=masked, alpha_mask=masked)
    accelerator = make_accelerator(cfg.mixed_precision, cpu=device == "cpu")
    if without == "lora-forms":
        LoRAModule.forward = lambda self, x: self._org_forward(x) + self.lora_up(self.lora_down(x)) * (
            self.multiplier * self.scale)
    if without == "onednn-linear":
        cpu_linear.usable = lambda x, weight: False
    network, _ = prepare_network(model, cfg, accelerator.device)
    if channels_last:
        unet.to(memory_format=torch.channels_last)
    optim = make_optimizer(cfg, network.unet_parameters(), network.text_encoder_parameters())
    scheduler = make_scheduler(cfg, optim, total_steps=1000)
    network, optimizer, scheduler = accelerator.prepare(network, optim.optimizer, scheduler)
    stepper = Stepper(model, network, optimizer, scheduler, accelerator, cfg)
    state = LoopState(cfg.seed)
    batch = Batch([0], [CAPTION], latents=torch.randn(1, 4, size // 8, size // 8),
                  masks=head_mask(size) if masked else None)
    if without != "host-memory":
        FreedMemoryReuse().install(accelerator.device)  # train() does this around its loop

    def step() -> None:
        stepper.run([batch], state)
        state.global_step += 1

    return step, network
