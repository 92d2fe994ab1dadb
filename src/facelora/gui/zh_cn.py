ZH_CN: dict[str, str] = {}
