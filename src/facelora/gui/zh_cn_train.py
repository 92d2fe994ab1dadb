"""zh-CN templates of the training run's messages the Train page shows (events.jsonl's End, Error
and Skipped events, written from events.said in train/) and of prepare's photo rejections
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
