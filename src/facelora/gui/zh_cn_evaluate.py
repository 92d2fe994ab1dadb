"""zh-CN templates of what scoring writes into likeness.json for the Evaluate page
(evaluate/board.py): the verdict, the rule of the best file, the warnings of a file and weight.
tests/test_gui_i18n.py names any of board.py's said() templates that is missing here."""

ZH_CN_EVALUATE: dict[str, str] = {
    "Best = among the clean files and weights (no copy, clone or bleed warning), the highest match rate over the "
    "likeness and flexibility prompts, then the lowest mean distance (to 0.01), then the lower weight, then the earlier "
    "file; the base model (no LoRA or weight 0) is never the pick, and when no file with faces is clean there is no "
    "pick.": "最佳 = 在干净的文件和权重中（没有复制、克隆或渗透警告），相似度提示词和灵活性提示词上匹配率最高的，"
             "然后平均距离最低的（精确到 0.01），然后权重较低的，然后较早的文件；底模（没有 LoRA 或权重为 0）从不入选，"
             "没有干净的带脸文件时不选出任何文件。",
    " (tiny test model: its images are noise, so this says nothing about likeness)":
        "（tiny 测试模型：它的图像是噪声，所以这与相似度无关）",
    "No images were scored.": "没有图像被评分。",
    "No generated image has a face, so no file or weight can be picked{noise}.":
        "生成的图像中没有人脸，所以无法选出文件或权重{noise}。",
    "No clean file: every file and weight with faces has a copy, clone or bleed warning ({n} checked), so none is "
    "named{noise}.": "没有干净的文件：每个有人脸的文件和权重都有复制、克隆或渗透警告（检查了 {n} 个），所以不指定任何文件{noise}。",
    "Only base-model images (no LoRA or weight 0) have faces, so no file or weight can be picked{noise}.":
        "只有底模图像（没有 LoRA 或权重为 0）有人脸，所以无法选出文件或权重{noise}。",
    "No image matches the person (distance below {threshold:g}); the closest clean one is {file} at weight "
    "{weight:g} (mean distance {distance:.3f}){noise}.":
        "没有图像与本人匹配（距离低于 {threshold:g}）；最接近的干净结果是 {file}，权重 {weight:g}（平均距离 {distance:.3f}）{noise}。",
    "Most alike: {file} at weight {weight:g}: {share:.0%} of its images match{noise}.":
        "最像：{file}，权重 {weight:g}：{share:.0%} 的图像匹配{noise}。",
    "Most alike: {file} at weight {weight:g}: {share:.0%} of its images match, mean distance {distance:.3f}{noise}.":
        "最像：{file}，权重 {weight:g}：{share:.0%} 的图像匹配，平均距离 {distance:.3f}{noise}。",
    "No generated image had a face, so there is no best file.": "生成的图像中没有人脸，所以没有最佳文件。",
    # a file and weight's warnings
    "{label}: the {n} generated faces are nearly identical (spread {spread:.3f}, below {least:.3f}): the LoRA "
    "repeats one face, a sign of over-training. Prefer an earlier file or a lower weight.":
        "{label}：生成的 {n} 张脸几乎一样（离散度 {spread:.3f}，低于 {least:.3f}）：LoRA 在重复同一张脸，这是过拟合的迹象。请选用较早的文件或较低的权重。",
    "{label}: {n} face(s) copy a training photo ({photos}): same face, pose, framing and pixels; the LoRA reproduces "
    "its photos instead of the person.":
        "{label}：{n} 张脸复制了训练照片（{photos}）：同样的脸、姿势、取景和像素；LoRA 在复现它的照片，而不是这个人。",
    "{label}: {share:.0%} of the faces in the bleed prompts (other people, no trigger) are the person: the LoRA puts "
    "the face on everyone.": "{label}：渗透提示词（其他人，没有触发词）中 {share:.0%} 的脸是本人：LoRA 把这张脸放到了每个人身上。",
    "{n} reference photo(s) have no face dlib can find and are left out.": "{n} 张参考照片中 dlib 找不到人脸，已排除。",
    # installing a LoRA file (evaluate/loras.py), and the files a grid takes
    "No LoRA file '{file}' in {folder}. Files there: {have}.": "{folder} 中没有 LoRA 文件“{file}”。那里的文件：{have}。",
    "none (train first)": "无（请先训练）",
    "No LoRA files named {pattern} in {folder}: train first (facelora train PROJECT), or name the files with "
    "--checkpoints.": "{folder} 中没有名为 {pattern} 的 LoRA 文件：请先训练（facelora train PROJECT），或用 --checkpoints 指定文件。",
    "{folder} is not a folder; give the LoRA folder, e.g. stable-diffusion-webui/models/Lora.":
        "{folder} 不是文件夹；请给出 LoRA 文件夹，例如 stable-diffusion-webui/models/Lora。",
    "{file} exists and holds other weights; use --overwrite to replace it.":
        "{file} 已存在且是别的权重；要替换它，请勾选“替换同名的不同文件”（命令行：--overwrite）。",
}
