"""zh-CN templates of the messages config/, networks/ and kohya_layout.py raise (the parameters,
Kohya config import, network_args and LoRA files), and the words their values name. A value stays
as it is (a path, a Kohya name, pydantic's or a parser's detail); tests/test_gui_i18n.py names any
message that is missing here."""

ZH_CN_ERRORS_CONFIG: dict[str, str] = {
    # config/fields.py and values.py: one parameter's value
    "unknown optimizer '{name}'; choose one of {known}": "未知的优化器 '{name}'；请从以下选择：{known}",
    "unknown scheduler '{name}'; choose one of {known}": "未知的学习率调度器 '{name}'；请从以下选择：{known}",
    "network_dim {dim} is above {max_rank}: a LoRA of that rank is larger than the layers it adapts. Only "
    "LyCORIS LoKr (network_module lycoris.kohya, algo=lokr) reads a dim this large, as its full-matrix setting "
    "(kohya_ss's LoKr presets use {full_dim}).":
        "network_dim {dim} 超过 {max_rank}：这个秩的 LoRA 比它所适配的层还大。只有 LyCORIS LoKr"
        "（network_module lycoris.kohya，algo=lokr）接受这么大的 dim，作为其全矩阵设置（kohya_ss 的 LoKr 预设使用 {full_dim}）。",
    "resolution '{value}' must be one number or 'W,H', each a multiple of 8 and at least 64":
        "resolution '{value}' 必须是一个数字或 'W,H'，每个都是 8 的倍数且不小于 64",
    "Argument '{item}' must be 'key=value' (e.g. weight_decay=0.01).":
        "参数 '{item}' 必须写成 'key=value'（例如 weight_decay=0.01）。",
    # config/settings.py: facelora.toml
    "{path} is not valid TOML: {error}": "{path} 不是有效的 TOML：{error}",
    "{file} is a Kohya dataset config (folders, repeats, resolution), not a training config: import the training "
    "config that names it (dataset_config), or lay its folders out as image/<repeats>_<trigger> and run facelora init "
    "there. Nothing was changed.":
        "{file} 是 Kohya 的数据集配置（文件夹、重复次数、分辨率），不是训练配置：请导入引用它的训练配置（dataset_config），"
        "或把它的文件夹整理成 image/<repeats>_<trigger> 后在那里运行 facelora init。没有做任何更改。",
    "{file} holds no training parameter of sd-scripts or kohya_ss (learning_rate, network_dim, ...): it is not a Kohya "
    "training config. Nothing was changed.":
        "{file} 中没有 sd-scripts 或 kohya_ss 的训练参数（learning_rate、network_dim 等）：它不是 Kohya 训练配置。没有做任何更改。",
    "{where}: Value error, {error} (got {got})": "{where}：{error}（输入的是 {got}）",
    "{where}: {msg} (got {got})": "{where}：{msg}（输入的是 {got}）",
    "{path}: Invalid parameter(s): {problems}": "{path}：参数无效：{problems}",
    # config/kohya.py and kohya_network.py: importing and exporting Kohya configs
    "Set output_name before exporting: Kohya needs a file name.": "导出前请设置 output_name：Kohya 需要一个文件名。",
    "bucket_reso_steps {steps} with enable_bucket: sd-scripts' train_network.py stops unless it is divisible by "
    "64; set 64 or 128 before exporting.":
        "bucket_reso_steps {steps} 与 enable_bucket 同用：除非它能被 64 整除，sd-scripts 的 train_network.py 会停止；"
        "导出前请设为 64 或 128。",
    "This config trains with {flag}=true; facelora trains SD1.5 LoRA only.":
        "此配置以 {flag}=true 训练；facelora 只训练 SD1.5 LoRA。",
    "{file} holds values facelora cannot train with; change them in the file and import again. {problems}":
        "{file} 含有 facelora 无法用来训练的值；请在文件中修改后重新导入。{problems}",
    "{file} holds values facelora cannot train with; change them in the file and import again. {problems} {unused}":
        "{file} 含有 facelora 无法用来训练的值；请在文件中修改后重新导入。{problems} {unused}",
    "The file": "该文件",
    "Not a valid kohya_ss JSON config: {error}": "不是有效的 kohya_ss JSON 配置：{error}",
    "Not a kohya_ss config: the JSON holds no parameters.": "不是 kohya_ss 配置：该 JSON 中没有参数。",
    "Not a valid TOML file, nor a kohya_ss JSON config: {error}": "既不是有效的 TOML 文件，也不是 kohya_ss JSON 配置：{error}",
    "dataset_config {path} cannot be read: {error}": "无法读取 dataset_config {path}：{error}",
    "LoRA_type '{lora_type}' ({what}): facelora trains {types}; train this network with Kohya's trainer, or "
    "choose one of these.":
        "LoRA_type '{lora_type}'（{what}）：facelora 训练 {types}；请用 Kohya 的训练器训练这种网络，或从中选择一种。",
    "LoRA_type '{lora_type}': facelora trains {types}; train this network with Kohya's trainer, or choose one of "
    "these.":
        "LoRA_type '{lora_type}'：facelora 训练 {types}；请用 Kohya 的训练器训练这种网络，或从中选择一种。",
    # kohya_layout.py: adopting a folder laid out the Kohya way
    "'{root}' holds no Kohya layout to adopt (image/<repeats>_<name>/).":
        "'{root}' 中没有可采用的 Kohya 布局（image/<repeats>_<name>/）。",
    "{folder} holds {n} '<repeats>_<name>' folders ({names}); facelora trains one person per project: keep one "
    "there.":
        "{folder} 中有 {n} 个 '<repeats>_<name>' 文件夹（{names}）；facelora 每个项目只训练一个人：请只保留一个。",
    "The folder {folder} names the trigger '{found}', not '{trigger}'; give --trigger {found}, or rename the "
    "folder. Nothing was changed.":
        "文件夹 {folder} 给出的触发词是 '{found}'，不是 '{trigger}'；请指定 --trigger {found}，或重命名该文件夹。"
        "没有做任何更改。",
    # networks/: network_module and network_args
    "network_module '{name}': facelora trains {modules}.": "network_module '{name}'：facelora 训练 {modules}。",
    "network_args {key}={value}: must be above 0.": "network_args {key}={value}：必须大于 0。",
    "network_args {unknown}: networks.lora in facelora takes {known} (LoHa, LoKr and DoRA: "
    "network_module lycoris.kohya).":
        "network_args {unknown}：facelora 的 networks.lora 接受 {known}（LoHa、LoKr 和 DoRA："
        "请用 network_module lycoris.kohya）。",
    "network_args conv_alpha needs conv_dim (the rank of the 3x3 convolutions' LoRA).":
        "network_args conv_alpha 需要 conv_dim（3x3 卷积的 LoRA 的秩）。",
    "network_args {unknown}: lycoris.kohya in facelora takes {known}.":
        "network_args {unknown}：facelora 的 lycoris.kohya 接受 {known}。",
    "network_args algo={algo}: facelora trains the LyCORIS algorithms {known}.":
        "network_args algo={algo}：facelora 训练的 LyCORIS 算法为 {known}。",
    "network_args {key}={value}: a probability, from 0 up to 1.": "network_args {key}={value}：应为概率，从 0 到 1（不含 1）。",
    "network_args bypass_mode=True with dora_wd=True: lycoris' bypass forward leaves DoRA's weight decomposition "
    "out, so it would train a plain LoRA. Leave bypass_mode unset: facelora computes DoRA in an equivalent form "
    "that needs no weight-sized tensors.":
        "network_args bypass_mode=True 与 dora_wd=True 同用：lycoris 的旁路前向会略去 DoRA 的权重分解，"
        "因此训练出的只是普通 LoRA。请不要设置 bypass_mode：facelora 以等价形式计算 DoRA，无需权重大小的张量。",
    "one number for several blocks": "多个块只给了一个数字",
    "network_args {name}={text}: {length} comma-separated numbers or one of {curves} (e.g. sine+0.5).":
        "network_args {name}={text}：应为 {length} 个逗号分隔的数字，或 {curves} 之一（例如 sine+0.5）。",
    "network_args {name}={text}: at most {length} weights, none below 0.":
        "network_args {name}={text}：最多 {length} 个权重，且都不小于 0。",
    # networks/: building a LoRA and loading its file
    "A LoRA must train the UNet, the text encoder, or both.": "LoRA 必须训练 UNet、文本编码器，或两者都训练。",
    "{name}: LoRA adapts Linear and Conv2d modules, not {kind}": "{name}：LoRA 只适配 Linear 和 Conv2d 模块，不适配 {kind}",
    "The LoRA has alpha {file_alpha:g}, the network {alpha:g}; set {what} to {file_alpha:g}.":
        "该 LoRA 的 alpha 为 {file_alpha:g}，网络的为 {alpha:g}；请把 {what} 设为 {file_alpha:g}。",
    "create_network_from_weights needs a file or weights_sd.": "create_network_from_weights 需要一个文件或 weights_sd。",
    "{file}: its modules have {what}s {values}; facelora's LoRA has one {what} for all (one for the 3x3 "
    "convolutions).":
        "{file}：其模块的 {what} 各不相同：{values}；facelora 的 LoRA 所有模块共用一个 {what}（3x3 卷积另有一个）。",
    "{file}: no lora_down weights: not a LoRA.": "{file}：没有 lora_down 权重：不是 LoRA。",
    "{file}: lycoris found {found} of its {n} modules in this model; it was made for another model.":
        "{file}：lycoris 在此模型中只找到其 {n} 个模块中的 {found} 个；它是为另一个模型制作的。",
    "The weights": "这些权重",
    "The LoRA does not match the network: it lacks {n_missing} tensors of {m_missing} modules this network has "
    "(e.g. {missing}); it has {n_extra} tensors of {m_extra} modules this network does not (e.g. {extra}). "
    "{others}":
        "该 LoRA 与网络不匹配：它缺少此网络所含 {m_missing} 个模块的 {n_missing} 个张量（例如 {missing}）；"
        "它多出此网络没有的 {m_extra} 个模块的 {n_extra} 个张量（例如 {extra}）。{others}",
    "The LoRA does not match the network: it lacks {n_missing} tensors of {m_missing} modules this network has "
    "(e.g. {missing}). {others}":
        "该 LoRA 与网络不匹配：它缺少此网络所含 {m_missing} 个模块的 {n_missing} 个张量（例如 {missing}）。{others}",
    "The LoRA does not match the network: it has {n_extra} tensors of {m_extra} modules this network does not "
    "(e.g. {extra}). {others}":
        "该 LoRA 与网络不匹配：它多出此网络没有的 {m_extra} 个模块的 {n_extra} 个张量（例如 {extra}）。{others}",
    "It was made for other modules (was it trained with or without the text encoder, with another network type or "
    "network_args, or by another tool?).":
        "它是为其他模块制作的（训练时是否包含文本编码器？是否用了另一种网络类型或 network_args，或另一个工具？）。",
    "{key} has shape {shape}, the network expects {expected}.": "{key} 的形状为 {shape}，网络需要 {expected}。",
    "{key} has shape {shape}, the network expects {expected}. It has rank {rank}; set network_dim to {rank}.":
        "{key} 的形状为 {shape}，网络需要 {expected}。它的秩为 {rank}；请把 network_dim 设为 {rank}。",
    "{key} has shape {shape}, the network expects {expected}. It has rank {rank}; set network_dim to {rank} (as "
    "conv_dim: it is a 3x3 convolution).":
        "{key} 的形状为 {shape}，网络需要 {expected}。它的秩为 {rank}；请把 network_dim 设为 {rank}"
        "（作为 conv_dim：它是 3x3 卷积）。",
}
