"""zh-CN templates of the training run's messages the Train page shows (events.jsonl's End, Error
and Skipped events and the Start event's notes, written with messages.said in train/, dataset.py
and config/checks.py) and of prepare's photo rejections
(prepare/images.py, shown for an upload). A value stays as it is (a step, a file name, a path);
tests/test_gui_i18n.py names any message that is missing here."""

ZH_CN_TRAIN: dict[str, str] = {
    # train/loop.py: how a run ends
    "Training finished: {step} steps, {epochs} epochs, average loss {loss:.4f}. Final LoRA: {final}":
        "训练完成：{step} 步，{epochs} 轮，平均损失 {loss:.4f}。最终 LoRA：{final}",
    "Nothing to resume: this run already finished at step {step}. Final LoRA: {final}":
        "没有可继续的训练：这次训练已在第 {step} 步完成。最终 LoRA：{final}",
    "Interrupted at step {step}. Saved {file}.": "已在第 {step} 步中断。已保存 {file}。",
    "Interrupted at step {step}.": "已在第 {step} 步中断。",
    "Stopped at once at step {step}; nothing more was saved.": "已在第 {step} 步立即停止；没有再保存任何文件。",
    "Step {step}: the loss or gradient is NaN/inf; the step was skipped ({row} in a row, {total} in all).":
        "第 {step} 步：损失或梯度为 NaN/inf，已跳过这一步（连续 {row} 步，共 {total} 步）。",
    "Training stopped: {row} steps in a row had a NaN/inf loss (max_nonfinite_steps {most}); the weights were not "
    "changed by them. Likely causes: a learning rate too high for {optimizer} (now unet_lr {unet_lr:g}, "
    "text_encoder_lr {te_lr:g}); fp16 on a card without proper fp16 support, or an fp16 overflow (try "
    "--mixed_precision bf16 or no); a broken training image (re-save or remove it); a broken base model or LoRA "
    "(network_weights); or a large noise_offset. The files and training states saved before are kept: lower the "
    "rate or change precision and train again, or --resume from the last state.":
        "训练已停止：连续 {row} 步的损失为 NaN/inf（max_nonfinite_steps {most}）；这些步没有改变权重。可能的原因："
        "学习率对 {optimizer} 来说太高（当前 unet_lr {unet_lr:g}，text_encoder_lr {te_lr:g}）；显卡不能很好地支持 "
        "fp16，或 fp16 溢出（试试 --mixed_precision bf16 或 no）；训练图片损坏（重新保存或删除它）；基础模型或 LoRA"
        "（network_weights）损坏；或 noise_offset 过大。之前保存的文件和训练状态都保留着：降低学习率或更换精度后重新"
        "训练，或用 --resume 从最后的状态继续。",
    # gui/jobs.py: a run that ended without its own last line
    "training stopped with an error": "训练因错误而停止",
    "The training process ended without finishing (see the log below).": "训练进程未完成就结束了（见下方日志）。",
    # gui/pages/train.py: an epoch's likeness of the samples
    "epoch {epoch}: {scores}": "第 {epoch} 轮：{scores}", "no faces in the samples": "示例图片中没有人脸",
    "faces {rate:.0%}": "人脸 {rate:.0%}", "match {rate:.0%}": "匹配 {rate:.0%}", "distance {d:.3f}": "距离 {d:.3f}",
    "bleed {rate:.0%}": "串脸 {rate:.0%}", "copies {n:.0f}": "复制 {n:.0f}", ", ": "，",
    # a run's start notes (events.jsonl's Start notes): train/, dataset.py, config/checks.py
    "network_alpha {alpha:g} is above network_dim {dim}: the update is scaled up by {scale:g}; the tutorial uses half "
    "the rank or less.": "network_alpha {alpha:g} 大于 network_dim {dim}：更新被放大 {scale:g} 倍；教程使用秩的一半或更小。",
    "{optimizer} needs the bitsandbytes package, which does not import here (pip install bitsandbytes), so {plain} "
    "(same update, 32-bit states) is used. Choose {choices} to silence this.":
        "{optimizer} 需要 bitsandbytes 包，但这里无法导入它（pip install bitsandbytes），因此改用 {plain}（同样的更新，"
        "32 位状态）。选择 {choices} 可消除此提示。",
    "{optimizer} runs on the CPU through bitsandbytes, but its step is slow there (rank 128: about 9x fused AdamW's "
    "optimizer step); {plain} is faster on the CPU and needs about 0.4 GiB more memory.":
        "{optimizer} 通过 bitsandbytes 在 CPU 上运行，但每步很慢（秩 128 时约为融合 AdamW 优化器步的 9 倍）；{plain} "
        "在 CPU 上更快，只多用约 0.4 GiB 内存。",
    "mixed_precision fp16 is for NVIDIA GPUs: on the CPU, fp16 autocast runs a 3x3 convolution about 700x slower than "
    "fp32 (measured, see README), so this run trains in fp32. Ask for bf16 to use the CPU's bf16 autocast.{full_fp16}":
        "mixed_precision fp16 适用于 NVIDIA 显卡：在 CPU 上，fp16 autocast 运行 3x3 卷积比 fp32 慢约 700 倍（实测，见 "
        "README），因此这次训练使用 fp32。若要使用 CPU 的 bf16 autocast，请选择 bf16。{full_fp16}",
    " full_fp16 is off with it.": "full_fp16 也随之关闭。",
    "xformers needs CUDA; PyTorch's SDPA attention is used instead.": "xformers 需要 CUDA；改用 PyTorch 的 SDPA 注意力。",
    "xformers cannot be used ({error}); PyTorch's SDPA attention is used instead.":
        "无法使用 xformers（{error}）；改用 PyTorch 的 SDPA 注意力。",
    "{n} image(s) have no '{ext}' caption, so the folder words are used as their caption: {files}. Check "
    "caption_extension (Kohya's 'no caption file found').":
        "{n} 张图片没有“{ext}”标注文件，因此用文件夹名中的词作为标注：{files}。请检查 caption_extension（即 Kohya 的"
        "“no caption file found”）。",
    "{n} caption file(s) are not UTF-8 text, so their unreadable bytes became '\ufffd': {files}. Save them as UTF-8 "
    "(the trigger word must read right).":
        "{n} 个标注文件不是 UTF-8 文本，无法读取的字节变成了“\ufffd”：{files}。请把它们另存为 UTF-8（触发词必须读对）。",
    "alpha_mask is on, but {n} of the photos have no alpha channel, so their loss is not masked: run 'facelora "
    "prepare PHOTOS PROJECT --head-mask' to write head masks.":
        "alpha_mask 已开启，但有 {n} 张照片没有 alpha 通道，因此它们的损失没有遮罩：运行“facelora prepare PHOTOS "
        "PROJECT --head-mask”写入头部遮罩。",
    "Training at {w} x {h}, but {n} of {total} images are not that size ({sizes}): each is scaled and centre-cropped "
    "to {w} x {h} (enable_bucket keeps their shape): {files}. Prepare at the training resolution (facelora prepare "
    "--resolution {w}) or set resolution to the images' size.":
        "训练分辨率为 {w} x {h}，但 {total} 张图片中有 {n} 张不是这个尺寸（{sizes}）：每张都会被缩放并居中裁剪为 {w} x "
        "{h}（enable_bucket 可保留其比例）：{files}。请按训练分辨率准备图片（facelora prepare --resolution {w}），或把 "
        "resolution 设为图片的尺寸。",
    "Starting from the LoRA {file}.": "从 LoRA {file} 开始。",
    "The tiny test model has random weights: its LoRA files and samples are noise, not results.":
        "微型测试模型的权重是随机的：它的 LoRA 文件和示例图片都是噪声，不是结果。",
    "Adafactor: warmup_init needs relative_step, so relative_step is set to True (as Kohya does).":
        "Adafactor：warmup_init 需要 relative_step，因此 relative_step 被设为 True（与 Kohya 相同）。",
    "The text encoder's learning rate is 0: its LoRA stays as it starts (zero change).":
        "文本编码器的学习率为 0：它的 LoRA 保持初始状态（零变化）。",
    "The UNet's learning rate is 0: its LoRA stays as it starts (zero change).": "UNet 的学习率为 0：它的 LoRA 保持初始状态（零变化）。",
    "{optimizer} finds its own step size and expects learning rates around 1.0; {lr:g} makes it take tiny steps "
    "(Kohya warns the same).": "{optimizer} 会自行确定步长，学习率应在 1.0 左右；{lr:g} 会让它只迈很小的步（Kohya 也这样警告）。",
    "Adafactor with relative_step sets its own learning rate: unet_lr and text_encoder_lr are ignored.":
        "启用 relative_step 的 Adafactor 自行设定学习率：unet_lr 和 text_encoder_lr 被忽略。",
    "Adafactor with relative_step sets its own learning rate, so the '{scheduler}' scheduler is replaced by "
    "'adafactor' (as Kohya does).": "启用 relative_step 的 Adafactor 自行设定学习率，因此“{scheduler}”调度器被替换为“adafactor”"
                                    "（与 Kohya 相同）。",
    "Ignoring {name}: a save that never finished (the run was killed while saving).":
        "忽略 {name}：一次没有完成的保存（训练在保存时被终止）。",
    "Ignoring state {name}: it has no manifest.json (an incomplete save).": "忽略状态 {name}：它没有 manifest.json（保存不完整）。",
    "Ignoring state {state}: its manifest.json is missing or unreadable; trying the one before it.":
        "忽略状态 {state}：它的 manifest.json 缺失或无法读取；改试前一个。",
    "Ignoring state {state}: it has format {found}, this facelora reads {wanted}; trying the one before it.":
        "忽略状态 {state}：它的格式是 {found}，本版 facelora 读取的是 {wanted}；改试前一个。",
    "Ignoring state {state}: {file} is missing; trying the one before it.": "忽略状态 {state}：缺少 {file}；改试前一个。",
    "Ignoring state {state}: {file} does not match its hash (a damaged or half-written file); trying the one before it.":
        "忽略状态 {state}：{file} 与其哈希不符（文件损坏或只写了一半）；改试前一个。",
    "Changed since the state was saved: {changes}. The run continues with the new values.":
        "自保存状态以来已更改：{changes}。训练将使用新值继续。",
    "The state was saved by {saved} process(es), this run has {now}: the rest of the run shares the data differently "
    "than an unbroken run would.": "状态由 {saved} 个进程保存，这次训练有 {now} 个：剩余训练分配数据的方式与不间断的训练不同。",
    "The state {name} holds no EMA weights (saved by an older facelora): the EMA starts again from the resumed weights, "
    "so the -ema files differ from an unbroken run's.":
        "状态 {name} 不含 EMA 权重（由旧版 facelora 保存）：EMA 从恢复的权重重新开始，因此 -ema 文件与不间断训练的不同。",
    "Removed {name}: half of a LoRA file whose save was cut off.": "已删除 {name}：一个保存被中断的、只写了一半的 LoRA 文件。",
    "Resuming at step {step} of {total} (epoch {epoch}) from {folder}.": "从 {folder} 继续：第 {step} 步，共 {total} 步（第 {epoch} 轮）。",
    # gui/pages/train.py: the start notes under the state
    "Notes at the start of the run": "训练开始时的提示", "average": "平均",
    # prepare/images.py and gui/uploads.py: why a file cannot be a photo
    "cannot read the file ({why})": "无法读取文件（{why}）",
    "empty file (0 bytes)": "空文件（0 字节）",
    "file too large ({mb:.0f} MB; photos over {limit} MB are refused)": "文件太大（{mb:.0f} MB；超过 {limit} MB 的照片会被拒绝）",
    "HEIC/HEIF photo, but the pillow-heif plugin is not installed: pip install pillow-heif":
        "HEIC/HEIF 照片，但没有安装 pillow-heif 插件：pip install pillow-heif",
    "not an image (facelora reads jpg, png, webp, bmp, gif, tiff, avif; heic with pillow-heif)":
        "不是图片（facelora 可读取 jpg、png、webp、bmp、gif、tiff、avif；装有 pillow-heif 时还可读取 heic）",
    "absurdly large image (its header claims more pixels than any photo has)": "图片大得离谱（文件头声称的像素比任何照片都多）",
    "corrupt image header ({why})": "图片文件头损坏（{why}）",
    "absurdly large image ({w} x {h} pixels; at most {limit} megapixels)": "图片大得离谱（{w} x {h} 像素；最多 {limit} 百万像素）",
    "image too small ({w} x {h} pixels; at least {least} on each side)": "图片太小（{w} x {h} 像素；每边至少 {least}）",
    "absurdly large image (more pixels than any photo has)": "图片大得离谱（像素比任何照片都多）",
    "truncated file: it ends before the image does ({why})": "文件不完整：图片还没结束文件就结束了（{why}）",
    "corrupt image data ({why})": "图片数据损坏（{why}）",
    "not a photo type facelora reads ({types})": "不是 facelora 可读取的照片类型（{types}）",
    "Photo refused": "照片被拒绝",
}
