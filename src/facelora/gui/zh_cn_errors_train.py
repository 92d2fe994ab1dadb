"""zh-CN templates of the training side's errors the GUI shows (the raise sites of model/, train/,
dataset.py, buckets.py, lora_file.py, fileio.py, classimages.py, vram.py and parallel.py). A value stays as it is (a path, a file name, a Kohya name, a library's detail);
tests/test_gui_i18n.py names any message that is missing here."""

from ..model.family import EXPECTED

ZH_CN_ERRORS_TRAIN: dict[str, str] = {
    # dataset.py: the training folder as Kohya lays it out
    "Training folder '{root}' does not exist.": "训练文件夹 '{root}' 不存在。",
    "'{root}' is a '<repeats>_<trigger>' folder itself. Point train_data_dir at its parent ('{parent}'), as in Kohya's "
    "trainer: the number in the folder name is how often each image repeats.":
        "'{root}' 本身就是一个 '<repeats>_<trigger>' 文件夹。请把 train_data_dir 指向它的上一级（'{parent}'），"
        "与 Kohya 训练器相同：文件夹名中的数字是每张图像重复的次数。",
    "'{root}' has no '<repeats>_<trigger>' folder. It holds {n} images directly; put the images in a folder such as "
    "'{example}' (15 repeats, trigger word 'ohwx', class 'woman').":
        "'{root}' 中没有 '<repeats>_<trigger>' 文件夹。它直接存放了 {n} 张图像；请把图像放进例如 '{example}' 的文件夹"
        "（重复 15 次，触发词 'ohwx'，类别 'woman'）。",
    "'{root}' has no '<repeats>_<trigger>' folder. put the images in a folder such as '{example}' (15 repeats, "
    "trigger word 'ohwx', class 'woman').":
        "'{root}' 中没有 '<repeats>_<trigger>' 文件夹。请把图像放进例如 '{example}' 的文件夹（重复 15 次，触发词 'ohwx'，"
        "类别 'woman'）。",
    "'{folder}' holds no images ({extensions}). Add photos, or run 'facelora prepare PHOTOS {parent}' to make them.":
        "'{folder}' 中没有图像（{extensions}）。请添加照片，或运行 'facelora prepare PHOTOS {parent}' 生成。",
    "validation_split {split} leaves no photo of '{folder}' to train on; lower it.":
        "validation_split {split} 使 '{folder}' 没有照片可供训练；请调小它。",
    "The dataset has no buckets yet: scan it with a Bucketing, or call bucketed().":
        "数据集还没有分桶：请用 Bucketing 扫描它，或调用 bucketed()。",
    "conditioning_data_dir '{root}' does not exist. Write the head masks there with 'facelora prepare PHOTOS PROJECT "
    "--head-mask --mask-dir {name}', or unset it.":
        "conditioning_data_dir '{root}' 不存在。请用 'facelora prepare PHOTOS PROJECT --head-mask --mask-dir {name}' "
        "把头部遮罩写到那里，或取消此设置。",
    "With masks from conditioning_data_dir every photo needs its caption file, as in Kohya (which trains them with an "
    "empty caption): {files}.":
        "使用 conditioning_data_dir 的遮罩时，每张照片都需要自己的标注文件，与 Kohya 相同（Kohya 会以空标注训练它们）：{files}。",
    "the conditioning folder '{folder}' (the masks of '{name}', each named as its photo) holds more than one mask for "
    "a photo: {files}. Keep one each.":
        "条件文件夹 '{folder}'（'{name}' 的遮罩，每个与其照片同名）中有照片对应不止一个遮罩：{files}。每张照片只保留一个。",
    "{n} photo(s) have no mask in the conditioning folder '{folder}' (the masks of '{name}', each named as its photo): "
    "{files}. Add them (prepare --head-mask --mask-dir writes them): Kohya's masked_loss needs one each.":
        "{n} 张照片在条件文件夹 '{folder}'（'{name}' 的遮罩，每个与其照片同名）中没有遮罩：{files}。请补上"
        "（prepare --head-mask --mask-dir 会生成）：Kohya 的 masked_loss 每张都需要一个。",
    "the conditioning folder '{folder}' (the masks of '{name}', each named as its photo) holds {n} mask(s) of no photo "
    "(Kohya refuses extra conditioning images): {files}. Remove them.":
        "条件文件夹 '{folder}'（'{name}' 的遮罩，每个与其照片同名）中有 {n} 个遮罩没有对应的照片"
        "（Kohya 拒绝多余的条件图像）：{files}。请删除它们。",
    "{n} mask(s) in the conditioning folder '{folder}' (the masks of '{name}', each named as its photo) are not the "
    "size of their photo (Kohya needs the same size): {files}.":
        "条件文件夹 '{folder}'（'{name}' 的遮罩，每个与其照片同名）中有 {n} 个遮罩与其照片尺寸不同（Kohya 要求尺寸相同）：{files}。",
    # buckets.py, train/data.py: the training images
    "Cannot read the training image {path}: {error}. Replace or remove it.":
        "无法读取训练图像 {path}：{error}。请替换或删除它。",
    "The training image {path} is smaller than bucket_reso_steps ({step} px) on one side: with bucket_no_upscale it "
    "is never enlarged. Replace it, or turn bucket_no_upscale off.":
        "训练图像 {path} 有一边小于 bucket_reso_steps（{step} 像素）：开启 bucket_no_upscale 时它不会被放大。"
        "请替换它，或关闭 bucket_no_upscale。",
    "{n} training image(s) are smaller than {side} px on a side, too small to learn a face from: {files}. Remove "
    "them, or prepare larger photos.":
        "{n} 张训练图像有一边小于 {side} 像素，太小，学不到人脸：{files}。请删除它们，或准备更大的照片。",
    "The VAE gave NaN/inf latents for {files}. The image may be broken (re-save it), or the VAE overflows in half "
    "precision: train with mixed_precision 'no' or use a fixed VAE.":
        "VAE 为 {files} 给出了 NaN/inf 潜变量。图像可能已损坏（请重新保存），或 VAE 在半精度下溢出："
        "请用 mixed_precision 'no' 训练，或使用修复过的 VAE。",
    # classimages.py
    "{file} has no class_word (woman, man, person): class images are photos of that class. Set it in [project] and "
    "run again.": "{file} 中没有 class_word（woman、man、person）：类别图像是该类别的照片。请在 [project] 中设置后重新运行。",
    "No base model: pass --base-model PATH or set pretrained_model_name_or_path.":
        "没有底模：请给出 --base-model PATH，或设置 pretrained_model_name_or_path。",
    # fileio.py
    "Could not read {what} {path}: there is no such file.": "无法读取{what} {path}：没有这个文件。",
    "Could not read {what} {path}: it is a folder; give a file.": "无法读取{what} {path}：它是一个文件夹；请给出文件。",
    "Could not read {what} {path}: {error}.": "无法读取{what} {path}：{error}。",
    "Could not read {what} {path}: it is not UTF-8 text (byte {at} is {byte}). Save it as UTF-8.":
        "无法读取{what} {path}：它不是 UTF-8 文本（第 {at} 个字节是 {byte}）。请以 UTF-8 保存。",
    "Could not read {what} {path}: it is not valid JSON ({error}). It may be damaged or half written; make it again.":
        "无法读取{what} {path}：它不是有效的 JSON（{error}）。它可能已损坏或只写了一半；请重新生成。",
    "the file": "文件",
    # lora_file.py
    "Cannot read {path}: {error}": "无法读取 {path}：{error}",
    "LoRA metadata values must be strings; not so for {keys}": "LoRA 元数据的值必须是字符串；以下不是：{keys}",
    "No LoRA file at {path}.": "{path} 处没有 LoRA 文件。",
    "{what} holds no tensors: not a LoRA.": "{what} 中没有张量：不是 LoRA。",
    "{what} is a base model checkpoint, not a LoRA.": "{what} 是底模检查点，不是 LoRA。",
    "{what} is an SDXL LoRA (lora_te1_/lora_te2_ names); facelora's LoRAs are SD1.5.":
        "{what} 是 SDXL LoRA（lora_te1_/lora_te2_ 名称）；facelora 的 LoRA 是 SD1.5 的。",
    "{what} is not a Kohya SD1.5 LoRA or LyCORIS file (a key like '{key}').":
        "{what} 不是 Kohya SD1.5 LoRA 或 LyCORIS 文件（有像 '{key}' 这样的键）。",
    "{what} is incomplete: {module} has {suffixes}, not the whole lora_down and lora_up weight (or LoHa's hada_*, "
    "LoKr's lokr_* tensors).":
        "{what} 不完整：{module} 只有 {suffixes}，而不是完整的 lora_down 和 lora_up 权重（或 LoHa 的 hada_*、LoKr 的 lokr_* 张量）。",
    "The tensors to save": "要保存的张量",
    # model/: the base model
    EXPECTED: "facelora 需要一个 Stable Diffusion 1.5 底模：单个 .safetensors 检查点（例如 v1-5-pruned-emaonly.safetensors "
              "或 SD1.5 微调模型），或一个包含 model_index.json、unet/、text_encoder/ 和 vae/ 的 diffusers 文件夹。",
    "No base model at '{path}': no such file or folder. facelora never downloads models; download an SD1.5 checkpoint "
    "yourself and give its path. {expected}":
        "'{path}' 处没有底模：没有这个文件或文件夹。facelora 从不下载模型；请自行下载 SD1.5 检查点并给出其路径。{expected}",
    "No base model: set pretrained_model_name_or_path (--base-model PATH), an SD1.5 .safetensors file or diffusers "
    "folder.": "没有底模：请设置 pretrained_model_name_or_path（--base-model PATH），即 SD1.5 的 .safetensors 文件或 diffusers 文件夹。",
    "'{name}' is neither a .safetensors checkpoint nor a diffusers folder. {expected}":
        "'{name}' 既不是 .safetensors 检查点，也不是 diffusers 文件夹。{expected}",
    "{name}: {problem} {expected}": "{name}：{problem} {expected}",
    "{problem} {expected}": "{problem} {expected}",
    "{name} is a pickle checkpoint ({suffix}), which can run code when it is loaded. Use the model's .safetensors "
    "version, or, if you trust the file, pass --allow-pickle (allow_pickle=True): facelora then reads it with "
    "torch.load(weights_only=True), which refuses anything but tensors.":
        "{name} 是 pickle 检查点（{suffix}），加载时可能运行代码。请使用该模型的 .safetensors 版本；如果你信任这个文件，"
        "可以给出 --allow-pickle（allow_pickle=True）：facelora 会用 torch.load(weights_only=True) 读取，只接受张量。",
    "{name} could not be read as a checkpoint of plain tensors ({error}). It may be truncated, or hold Python objects "
    "that torch.load(weights_only=True) refuses to run. Use the model's .safetensors version.":
        "无法把 {name} 作为纯张量检查点读取（{error}）。它可能不完整，或含有 torch.load(weights_only=True) 拒绝运行的 "
        "Python 对象。请使用该模型的 .safetensors 版本。",
    "{name} holds a {type}, not a checkpoint's weights. {expected}": "{name} 中是一个 {type}，而不是检查点的权重。{expected}",
    "{name}: its UNet starts {conv_in} channels wide and its text encoder is {token} wide; SD1.5's are 320 and 768. "
    "{expected}": "{name}：它的 UNet 起始宽度为 {conv_in} 通道，文本编码器宽度为 {token}；SD1.5 的是 320 和 768。{expected}",
    "{name}: its {what} weights do not fit SD1.5's {what} ({detail}). {expected}":
        "{name}：它的 {what} 权重与 SD1.5 的 {what} 不符（{detail}）。{expected}",
    "{name} is incomplete or not SD1.5: {n} {what} weights are missing (e.g. {key}); {unknown} are unknown (e.g. "
    "{other}). {expected}":
        "{name} 不完整或不是 SD1.5：缺少 {n} 个 {what} 权重（例如 {key}）；{unknown} 个未知（例如 {other}）。{expected}",
    "{name} is incomplete or not SD1.5: {n} {what} weights are missing (e.g. {key}). {expected}":
        "{name} 不完整或不是 SD1.5：缺少 {n} 个 {what} 权重（例如 {key}）。{expected}",
    "{name} is incomplete or not SD1.5: {unknown} are unknown (e.g. {other}). {expected}":
        "{name} 不完整或不是 SD1.5：{unknown} 个权重未知（例如 {other}）。{expected}",
    "The diffusers folder {folder} could not be loaded ({error}). {expected}":
        "无法加载 diffusers 文件夹 {folder}（{error}）。{expected}",
    "{part} holds only pickle weights (.bin), which can run code when loaded. Use a model with .safetensors weights "
    "or, if you trust it, pass --allow-pickle.":
        "{part} 中只有 pickle 权重（.bin），加载时可能运行代码。请使用带 .safetensors 权重的模型；如果你信任它，可以给出 --allow-pickle。",
    "{part} has a config but no weights (.safetensors). {expected}": "{part} 有配置但没有权重（.safetensors）。{expected}",
    "No single-file name for diffusers weight '{key}': not an SD1.5-architecture model.":
        "diffusers 权重 '{key}' 没有对应的单文件名称：不是 SD1.5 架构的模型。",
    "{folder} exists and is not a diffusers model; facelora will not replace it. Choose another folder.":
        "{folder} 已存在且不是 diffusers 模型；facelora 不会替换它。请选择另一个文件夹。",
    "Unknown sampler '{name}'. Choose one of: {names}.": "未知的采样器 '{name}'。请从以下选择：{names}。",
    "clip_skip {clip_skip} is out of range: the text encoder has {layers} layers (use 1 or 2).":
        "clip_skip {clip_skip} 超出范围：文本编码器有 {layers} 层（请用 1 或 2）。",
    # train/: setting up and resuming a run
    "network_weights: no LoRA file at {path}.": "network_weights：{path} 处没有 LoRA 文件。",
    "Nothing to train: the trained parts' learning rates are all 0. Set unet_lr or text_encoder_lr.":
        "没有可训练的内容：要训练部分的学习率全为 0。请设置 unet_lr 或 text_encoder_lr。",
    "The {name} optimizer needs the '{package}' package: pip install {package}":
        "{name} 优化器需要 '{package}' 包：pip install {package}",
    "optimizer_args {args} do not fit {name}: {error}": "optimizer_args {args} 不适用于 {name}：{error}",
    "Cannot save a {type} in the training state ({path}); this optimizer or scheduler keeps values facelora cannot "
    "save without pickle.":
        "无法在训练状态中保存 {type}（{path}）；这个优化器或调度器保存的值，facelora 不用 pickle 就无法保存。",
    "The newest saved state is of the run '{saved}', not '{now}': resuming it here would mix the two runs' files. "
    "Resume it with --output_name {saved}, or train from the start without --resume. Nothing was changed.":
        "最新保存的状态属于运行 '{saved}'，而不是 '{now}'：在这里继续会混合两次运行的文件。请用 --output_name {saved} "
        "继续，或不加 --resume 从头训练。没有做任何更改。",
    "The saved state's EMA of the weights has ema_decay {saved}, this run asks for {now}: its averaged weights cannot "
    "go on. Resume with --ema_decay {flag}, or train from the start without --resume.":
        "保存的状态中权重 EMA 的 ema_decay 为 {saved}，本次运行要求 {now}：它的平均权重无法继续。"
        "请用 --ema_decay {flag} 继续，或不加 --resume 从头训练。",
    "The saved state is of another network type: {saved_module} {saved_args}, this run trains {module} {args}. Resume "
    "with the saved network_module and network_args, or train from the start without --resume.":
        "保存的状态属于另一种网络类型：{saved_module} {saved_args}，本次运行训练的是 {module} {args}。"
        "请用保存时的 network_module 和 network_args 继续，或不加 --resume 从头训练。",
    "The saved state does not fit this run: {what}. Resume with the same settings, or train from the start without "
    "--resume.": "保存的状态与本次运行不符：{what}。请用相同的设置继续，或不加 --resume 从头训练。",
    "The network in {folder} does not match this run's LoRA (other modules or rank).":
        "{folder} 中的网络与本次运行的 LoRA 不符（模块或秩不同）。",
    "The saved state was trained with seed {saved}, this run has {seed}: resume with --seed {saved}.":
        "保存的状态用种子 {saved} 训练，本次运行是 {seed}：请用 --seed {saved} 继续。",
    "The EMA weights in {folder} do not fit this run's network: {error}":
        "{folder} 中的 EMA 权重与本次运行的网络不符：{error}",
    "it has decay {saved}, this EMA {decay}": "它的衰减为 {saved}，此 EMA 为 {decay}",
    "other weights (modules or rank) than this network's": "权重（模块或秩）与此网络的不同",
    # train/samples.py: the sample prompts file
    "Unknown option --{key} in the sample prompt '{line}'; use --n --w --h --d --l --s.":
        "示例提示词 '{line}' 中有未知选项 --{key}；请使用 --n --w --h --d --l --s。",
    "--{key} needs a number in the sample prompt '{line}' (got '{value}').":
        "示例提示词 '{line}' 中的 --{key} 需要一个数字（得到的是 '{value}'）。",
    "The sample prompt line '{line}' has options but no prompt.": "示例提示词行 '{line}' 有选项但没有提示词。",
    "The sample prompts file {path} does not exist.": "示例提示词文件 {path} 不存在。",
    "The sample prompts file {path} holds no prompt (one prompt a line).": "示例提示词文件 {path} 中没有提示词（每行一条）。",
    # vram.py, parallel.py
    "{file}: calibration needs facelora rows with and without gradient_checkpointing":
        "{file}：校准需要 facelora 开启和关闭 gradient_checkpointing 的数据行",
    "calibration needs bench/gpu.py's figures from a CUDA GPU, not a CPU test run":
        "校准需要 bench/gpu.py 在 CUDA GPU 上测得的数据，而不是 CPU 测试运行的",
    "{name} must be a whole number of processes or 'auto', not '{env}'": "{name} 必须是进程数（整数）或 'auto'，而不是 '{env}'",
    # model/ldm.py, model/base.py: what a file is when it is not SD1.5 (the {problem} of the messages above)
    "The file holds no tensors at all.": "这个文件里根本没有张量。",
    "This is a LoRA file, not a base model. Pass the SD1.5 checkpoint the LoRA is trained on as the base model; a "
    "LoRA is loaded on top of it (network_weights) or used in your UI.":
        "这是一个 LoRA 文件，不是底模。请把训练该 LoRA 所用的 SD1.5 检查点作为底模；LoRA 是加载在底模之上的"
        "（network_weights），或在你的界面中使用。",
    "This is an SDXL checkpoint (it has SDXL's second text encoder / size embedding).":
        "这是一个 SDXL 检查点（它有 SDXL 的第二个文本编码器 / 尺寸嵌入）。",
    "This is an SD2.x or SD3 checkpoint (its text encoder is OpenCLIP, not the CLIP ViT-L text model of SD1.5).":
        "这是一个 SD2.x 或 SD3 检查点（它的文本编码器是 OpenCLIP，而不是 SD1.5 的 CLIP ViT-L 文本模型）。",
    "This is an SD2.x checkpoint (its cross attention is 1024 wide, SD1.5's is 768).":
        "这是一个 SD2.x 检查点（它的交叉注意力宽度为 1024，SD1.5 的是 768）。",
    "This is a VAE on its own (only encoder./decoder. weights), not a full model. Pass the full SD1.5 checkpoint as "
    "the base model.": "这是一个单独的 VAE（只有 encoder./decoder. 权重），不是完整模型。请把完整的 SD1.5 检查点作为底模。",
    "This file holds only a VAE (first_stage_model.*), not a full model.":
        "这个文件只有一个 VAE（first_stage_model.*），不是完整模型。",
    "This is a single diffusers UNet weights file. Pass the diffusers folder that holds model_index.json (with unet/, "
    "text_encoder/, vae/) instead.":
        "这是单个 diffusers UNet 权重文件。请改为给出包含 model_index.json（以及 unet/、text_encoder/、vae/）的 diffusers 文件夹。",
    "This is a text encoder on its own, not a full model.": "这是一个单独的文本编码器，不是完整模型。",
    "This checkpoint has no text encoder (no cond_stage_model.transformer.* weights).":
        "这个检查点没有文本编码器（没有 cond_stage_model.transformer.* 权重）。",
    "This checkpoint has no VAE (no first_stage_model.* weights). Use a full SD1.5 checkpoint.":
        "这个检查点没有 VAE（没有 first_stage_model.* 权重）。请使用完整的 SD1.5 检查点。",
}
