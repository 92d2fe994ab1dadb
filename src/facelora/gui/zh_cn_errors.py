"""zh-CN templates of the core's messages that the GUI shows (the raise sites of any module but i18n.CLI_ONLY,
written as templates with values), the words of each error kind (i18n.ERROR_KINDS) and the
words a path message names (`what`). A value stays as it is (a path, a Kohya name, pydantic's
detail); tests/test_gui_i18n.py names any message that is missing here."""

from ..paths import ALLOWED

ZH_CN_ERRORS: dict[str, str] = {
    # paths.py: names and folders
    "{what} {name!r} cannot be a file name: {problem}. A name may hold {allowed}.":
        "{what} {name!r} 不能作为文件名：{problem}。名称可以包含{allowed}。",
    "{what} {text!r} contains a NUL character.": "{what} {text!r} 含有 NUL 字符。",
    "{what} is empty: name a folder inside the project, such as 'models'.":
        "{what}为空：请写项目内的一个文件夹，例如 'models'。",
    "{what} {text!r} must be a folder inside the project; its part {part!r} cannot be used: {problem}. Each part may "
    "hold {allowed}.": "{what} {text!r} 必须是项目内的文件夹；其中的 {part!r} 不能使用：{problem}。每一部分可以包含{allowed}。",
    "{what}: no path given.": "{what}：没有给出路径。",
    "{what} '{text}' lies outside {base}. facelora reads and writes only inside the project (and the folders the GUI "
    "was started with: --workspace, --allow).":
        "{what} '{text}' 位于 {base} 之外。facelora 只在项目内（以及启动 GUI 时给出的文件夹：--workspace、--allow）读写。",
    "'{text}' lies outside the folders this GUI may use ({listed}). Start it with --allow FOLDER to open another "
    "folder.": "'{text}' 位于本界面可以使用的文件夹（{listed}）之外。请用 --allow 文件夹 启动 GUI 以打开其他文件夹。",
    ALLOWED: "字母、数字、空格和除 / \\ < > : \" | ? * 之外的标点，不能是 '.' 或 '..'，不能是 Windows 保留的名称"
             "（CON、NUL、COM1 等），末尾不能是点或空格",
    "The path": "路径", "The project folder": "项目文件夹", "The file name": "文件名", "The trigger word": "触发词",
    "The image folder (repeats, trigger and class word)": "图片文件夹（重复次数、触发词和类别词）",
    # project.py and prepare/pipeline.py: projects, their folders and runs
    "Folder '{folder}' has no '<repeats>_' prefix. Kohya's layout needs the number of repeats first, e.g. "
    "'15_{folder}'. Rename it, or run 'facelora plan PROJECT --yes' to name it from the plan.":
        "文件夹 '{folder}' 没有 '<重复次数>_' 前缀。Kohya 的目录结构要求重复次数在前，例如 '15_{folder}'。"
        "请重命名，或运行 'facelora plan PROJECT --yes' 按计划命名。",
    "Folder '{folder}': repeats must be at least 1.": "文件夹 '{folder}'：重复次数至少为 1。",
    "Trigger word {trigger!r} must be one word without spaces or slashes (e.g. 'ohwx' or 'ScarlettJohansson'); it "
    "names the folder and starts every caption.":
        "触发词 {trigger!r} 必须是一个不含空格和斜杠的词（例如 'ohwx' 或 'ScarlettJohansson'）；它用于文件夹名，"
        "并写在每条标注的开头。",
    "'{root}' is not a facelora project (no {file}) (it is laid out the Kohya way: 'facelora init' or 'facelora "
    "train' adopts it). Create one with: facelora init {quoted} --trigger NAME":
        "'{root}' 不是 facelora 项目（没有 {file}）（它是 Kohya 的目录结构：'facelora init' 或 'facelora train' "
        "会接管它）。请这样创建：facelora init {quoted} --trigger NAME",
    "'{root}' is not a facelora project (no {file}). Create one with: facelora init {quoted} --trigger NAME":
        "'{root}' 不是 facelora 项目（没有 {file}）。请这样创建：facelora init {quoted} --trigger NAME",
    "{folder} holds files of an earlier run of '{name}' ({files}); a new run would mix with them. Give --overwrite to "
    "delete them and train again, --output_name NAME to keep both runs apart, or --resume to go on with the earlier "
    "run. Nothing was changed.":
        "{folder} 里有 '{name}' 上一次训练的文件（{files}）；新的训练会和它们混在一起。用 --overwrite 删除它们并重新训练，"
        "用 --output_name 名称 让两次训练分开，或用 --resume 继续上一次训练。没有改动任何东西。",
    "Expected exactly one '<repeats>_<trigger>' folder in {folder}, found {names}.":
        "{folder} 里应当正好有一个 '<重复次数>_<触发词>' 文件夹，实际找到：{names}。",
    "Cannot rename {old} to {new}: it already exists.": "无法把 {old} 重命名为 {new}：它已存在。",
    "'{root}' is already a facelora project; nothing was changed.": "'{root}' 已经是 facelora 项目；没有改动任何东西。",
    "'{root}' exists and is not empty and is not laid out the Kohya way (image/<repeats>_<name>/); choose a new "
    "folder so nothing of yours is overwritten.":
        "'{root}' 已存在、不为空，也不是 Kohya 的目录结构（image/<重复次数>_<名称>/）；请选择一个新文件夹，"
        "以免覆盖你的文件。",
    "'{project}' is not a facelora project yet. Give --trigger NAME (and --class-word) to create it, or run "
    "'facelora init \"{project}\" --trigger NAME' first.":
        "'{project}' 还不是 facelora 项目。请给出 --trigger 名称（以及 --class-word）来创建，或先运行 "
        "'facelora init \"{project}\" --trigger NAME'。",
    "The project's trigger word is '{project_trigger}', not '{trigger}'; leave out --trigger to use it.":
        "项目的触发词是 '{project_trigger}'，不是 '{trigger}'；去掉 --trigger 即使用项目的触发词。",
    "The project's class word is '{project_class}', not '{class_word}'; leave out --class-word to use it.":
        "项目的类别词是 '{project_class}'，不是 '{class_word}'；去掉 --class-word 即使用项目的类别词。",
    "Photo folder '{photos}' does not exist.": "照片文件夹 '{photos}' 不存在。",
    "'{photos}' holds no files; put the person's photos in it.": "'{photos}' 里没有文件；请把此人的照片放进去。",
    # locks.py: jobs
    "A {kind} job is already running for this project (process {pid}). Wait for it to end, or stop it first.":
        "此项目已有一个 {kind} 任务在运行（进程 {pid}）。请等它结束，或先停止它。",
    "A {other} job is already running for this project (process {pid}); {kind} cannot run beside it. Wait for it "
    "to end, or stop it first.":
        "此项目已有一个 {other} 任务在运行（进程 {pid}）；{kind} 不能与它同时运行。请等它结束，或先停止它。",
    "A {kind} job is just starting for this project; wait a moment.": "此项目的 {kind} 任务正在启动；请稍等。",
    # plan.py
    "images, epochs, batch size and steps must all be at least 1": "图片数、轮数、批量大小和步数都至少为 1",
    "The training folder holds no images.": "训练文件夹里没有图片。",
    "A step budget needs the number of epochs (max_train_epochs).": "按总步数规划需要轮数（max_train_epochs）。",
    # config/checks.py and config/overrides.py: parameters
    "full_fp16 and full_bf16 exclude each other: set one, with mixed_precision fp16 or bf16 to match.":
        "full_fp16 与 full_bf16 互斥：只能设置其中一个，并把 mixed_precision 设为相应的 fp16 或 bf16。",
    "{flag} requires mixed_precision {precision} (it is '{current}'): set --mixed_precision {precision}, or turn "
    "{flag} off.": "{flag} 需要 mixed_precision {precision}（当前为 '{current}'）：请设置 --mixed_precision {precision}，"
                   "或关闭 {flag}。",
    "network_train_unet_only and network_train_text_encoder_only exclude each other; set one.":
        "network_train_unet_only 与 network_train_text_encoder_only 互斥；只能设置其中一个。",
    "lr_scheduler 'constant' ignores warm-up, but lr_warmup_steps is set. Use 'constant_with_warmup', or set "
    "lr_warmup_steps to 0.": "lr_scheduler 'constant' 不做预热，但设置了 lr_warmup_steps。请改用 'constant_with_warmup'，"
                             "或把 lr_warmup_steps 设为 0。",
    "{optimizer} adapts one learning rate for all parameters, so unet_lr ({unet_lr}) and text_encoder_lr ({te_lr}) "
    "must be equal (the tutorial sets all learning rates to 1), or set one of them to 0.":
        "{optimizer} 为所有参数自适应同一个学习率，所以 unet_lr（{unet_lr}）和 text_encoder_lr（{te_lr}）必须相等"
        "（教程把所有学习率都设为 1），或把其中一个设为 0。",
    "lr_scheduler 'adafactor' works only with optimizer_type Adafactor.":
        "lr_scheduler 'adafactor' 只能与 optimizer_type Adafactor 一起使用。",
    "sample_every_n_epochs needs sample_prompts (a prompts file).": "sample_every_n_epochs 需要 sample_prompts（提示词文件）。",
    "network_module '{module}': facelora trains {modules} only.": "network_module '{module}'：facelora 只训练 {modules}。",
    "{module}: {error}": "{module}：{error}",
    "max_token_length {n}: facelora reads 75 caption tokens, as SD1.5 does. Shorten long captions (a face needs few "
    "tags) and set 75.": "max_token_length {n}：facelora 与 SD1.5 一样读取 75 个标注词元。请缩短过长的标注"
                         "（一张脸只需要少量标签），并设为 75。",
    "masked_loss needs masks: set alpha_mask (prepare --head-mask writes them as the PNGs' alpha channel) or "
    "conditioning_data_dir (prepare --head-mask --mask-dir mask writes them there).":
        "masked_loss 需要遮罩：请设置 alpha_mask（prepare --head-mask 把遮罩写进 PNG 的 alpha 通道）或 "
        "conditioning_data_dir（prepare --head-mask --mask-dir mask 把遮罩写到那里）。",
    "conditioning_data_dir holds loss masks, which only masked_loss reads (as in Kohya): set masked_loss too, or "
    "unset conditioning_data_dir.": "conditioning_data_dir 存放损失遮罩，只有 masked_loss 会读取（与 Kohya 相同）："
                                    "请同时设置 masked_loss，或取消 conditioning_data_dir。",
    "alpha_mask and conditioning_data_dir both give the masks; Kohya's conditioning dataset ignores the alpha "
    "channel: keep one of them.": "alpha_mask 和 conditioning_data_dir 都提供遮罩；Kohya 的条件数据集会忽略 alpha 通道："
                                  "只保留其中一个。",
    "Kohya's masks from conditioning_data_dir come with a dataset that holds no class images (reg_data_dir): use "
    "alpha masks for masked loss with class images (prepare --head-mask).":
        "Kohya 从 conditioning_data_dir 读取遮罩的数据集不能包含类别图片（reg_data_dir）：有类别图片时请用 alpha 遮罩做"
        "遮罩损失（prepare --head-mask）。",
    "Kohya's conditioning dataset refuses validation_split (its held-out photos' masks count as extra conditioning "
    "images): hold photos out in validation_data_dir instead, or use alpha masks.":
        "Kohya 的条件数据集不接受 validation_split（留出照片的遮罩会被当作多余的条件图像）：请改把照片放进 "
        "validation_data_dir，或使用 alpha 遮罩。",
    "prior_loss_weight {weight:g} weights class images, but reg_data_dir is not set: run 'facelora reg generate "
    "PROJECT' and set reg_data_dir = \"reg\".":
        "prior_loss_weight {weight:g} 是类别图片的权重，但没有设置 reg_data_dir：请运行 'facelora reg generate PROJECT'，"
        "并设置 reg_data_dir = \"reg\"。",
    "validate_every_n_steps/epochs and max_validation_steps need validation_split (the fraction of the photos held "
    "out, e.g. 0.1) or validation_data_dir (a folder of them).":
        "validate_every_n_steps/epochs 和 max_validation_steps 需要 validation_split（留作验证的照片比例，例如 0.1）"
        "或 validation_data_dir（存放这些照片的文件夹）。",
    "Unknown preset '{name}'; choose one of {presets}.": "未知的预设 '{name}'；请从 {presets} 中选择。",
    "Unexpected argument '{arg}'; parameters are given as --name value.": "意外的参数 '{arg}'；参数写作 --名称 值。",
    "Unknown parameter '--{name}'. {hint}": "未知参数 '--{name}'。{hint}",
    "--{name} takes one value, got {n}: {values}.": "--{name} 只接受一个值，实际给了 {n} 个：{values}。",
    "Invalid parameter(s): {problems}": "参数无效：{problems}",
    # the GUI's own messages (gui/)
    "'{text}' lies outside the folders this GUI may use ({listed}). To use it, add {folder} under \"Folders this GUI "
    "may use\" on the Project page (or start the GUI with --allow {folder}).":
        "'{text}' 位于本界面可以使用的文件夹（{listed}）之外。要使用它，请在项目页的“本界面可以使用的文件夹”中添加 "
        "{folder}（或用 --allow {folder} 启动 GUI）。",
    "This GUI serves the network (--listen): folders can only be added when it starts, with --allow FOLDER.":
        "此 GUI 对网络开放（--listen）：只能在启动时用 --allow 文件夹 添加文件夹。",
    "Give the folder's full path, e.g. /home/me/photos or C:\\Users\\me\\photos.":
        "请给出文件夹的完整路径，例如 /home/me/photos 或 C:\\Users\\me\\photos。",
    "{folder} is not a folder.": "{folder} 不是文件夹。",
    "{folder} is a whole drive; add the folder you need inside it.": "{folder} 是整个磁盘；请添加其中你需要的文件夹。",
    "{folder} is already inside a folder this GUI may use.": "{folder} 已经在本界面可以使用的文件夹内。",
    "No project is open: create or open one on the Project page.": "没有打开的项目：请在项目页创建或打开一个。",
    "This page serves the project {root} only, so it creates no other. Start it with --workspace FOLDER to create "
    "projects in FOLDER.": "此页面只服务于项目 {root}，因此不会创建其他项目。请用 --workspace 文件夹 启动，"
                           "以便在该文件夹中创建项目。",
    "{path} cannot be read ({error}); fix or delete it.": "无法读取 {path}（{error}）；请修复或删除它。",
    "{path}: 'allow' must be a list of folder paths.": "{path}：'allow' 必须是文件夹路径的列表。",
    "--auth must be USER:PASSWORD.": "--auth 必须写作 用户名:密码（USER:PASSWORD）。",
    "--listen without --auth would let anyone who can reach this machine read and write {roots} and run training "
    "there. Add --auth USER:PASSWORD, or --insecure-listen if this network is yours alone.":
        "不带 --auth 的 --listen 会让任何能访问这台机器的人读写 {roots} 并在那里运行训练。请加上 --auth USER:PASSWORD，"
        "如果这个网络只有你自己使用，也可以加 --insecure-listen。",
    "Choose one of the project's LoRA files.": "请选择项目中的一个 LoRA 文件。",
    "Give the weight the LoRA should be used at (the best weight, or 1.0).": "请给出使用该 LoRA 的权重（最佳权重，或 1.0）。",
    "The third axis needs both z (prompts, seeds, cfg, steps or probes) and z_values.":
        "第三轴需要同时设置 z（prompts、seeds、cfg、steps 或 probes）和 z_values。",
    "Grid settings: {problems}": "网格设置有误：{problems}",
    "No {kind} job is running for this project.": "此项目没有正在运行的 {kind} 任务。",
    "no free port for TensorBoard": "没有可供 TensorBoard 使用的空闲端口",
    # the error kinds (i18n.ERROR_KINDS), shown before a message that has no template here
    "Cannot do that": "无法执行", "Invalid parameter": "参数无效", "Path refused": "路径被拒绝",
    "Project problem": "项目问题", "Training folder problem": "训练文件夹问题", "Training image problem": "训练图片问题",
    "Job problem": "任务问题", "Cannot read a file": "无法读取文件", "Cannot write a file": "无法写入文件",
    "Disk full": "磁盘已满", "Base model problem": "基础模型问题", "LoRA file problem": "LoRA 文件问题",
    "Unknown network type": "未知的网络类型", "Unknown sampler": "未知的采样器", "Grid settings problem": "网格设置问题",
    "Grid axis problem": "网格轴问题", "Prompt problem": "提示词问题", "Sample prompts problem": "示例提示词问题",
    "Probe problem": "探针问题", "Likeness scoring problem": "相似度评分问题", "Class images problem": "类别图片问题",
    "Training diverged": "训练发散", "Cannot resume": "无法继续训练", "Invalid options": "选项无效",
    "Too few photos": "照片太少", "Captioner problem": "标注器问题", "Upscaler unavailable": "放大器不可用",
    "Prepare problem": "预处理问题",
}
