"""zh-CN templates of prepare's rejection reasons and warnings (prepare/pipeline.py, crop.py,
people.py, images.py, audit.py) and of what it says of the whole set (the pose coverage, the
resolution note), shown on the Photos page from prepare-report.json's templates and
values, and the words filled into them (the parts of a head an edge cuts, the edges, what a
close-up lacks). tests/test_gui_i18n.py names any reason or warning that is missing here."""

ZH_CN_PREPARE: dict[str, str] = {
    # rejections
    "the same file as {name}": "与 {name} 是同一个文件",
    "could not be processed ({kind}: {error})": "无法处理（{kind}：{error}）",
    "no face found": "没有找到人脸",
    "several people: a second face {share:.0%} of the subject's height (use --allow-multiple to keep the largest face)":
        "多人：第二张脸的高度是主体的 {share:.0%}（使用 --allow-multiple 保留最大的脸）",
    "several people: another person's face ({px} px) is inside the crop (use --allow-multiple to keep it)":
        "多人：另一个人的脸（{px} 像素）在裁剪范围内（使用 --allow-multiple 保留这张照片）",
    "the face's landmarks are not a face (the chin is not below the brows)": "人脸关键点不像一张脸（下巴不在眉毛下方）",
    "the face is cut by the photo's {edges} edge; use a photo that shows the whole face":
        "脸被照片的{edges}边缘切掉；请使用显示完整面部的照片",
    "the face ({w:.0f} x {h:.0f} px) does not fit in a square inside the photo ({width} x {height})":
        "脸（{w:.0f} x {h:.0f} 像素）放不进照片（{width} x {height}）内的正方形",
    "{what} is cut by the photo's {edge} edge; use a photo with room around the head":
        "{what}被照片的{edge}边缘切掉；请使用头部周围留有空间的照片",
    "{what} is cut by the photo's {edge} edge; {what2} is cut by the photo's {edge2} edge; use a photo with room "
    "around the head": "{what}被照片的{edge}边缘切掉；{what2}被照片的{edge2}边缘切掉；请使用头部周围留有空间的照片",
    "{parts}; use a photo with room around the head": "{parts}；请使用头部周围留有空间的照片",
    # the words filled into them
    "the top of the head": "头顶", "the forehead": "额头", "the chin": "下巴", "the head": "头部", "the face": "脸",
    "top": "上", "bottom": "下", "left": "左", "right": "右", "hair": "头发", "chin": "下巴", "hair or chin": "头发或下巴",
    # warnings
    "transparent areas were filled with white": "透明区域已填充为白色",
    "animated image: the first of its {frames} frames is used": "动图：使用了 {frames} 帧中的第一帧",
    "turned upright as its EXIF orientation ({orientation}) says": "已按 EXIF 方向（{orientation}）转正",
    "its colour profile could not be read; colours taken as sRGB": "无法读取颜色配置文件；颜色按 sRGB 处理",
    "not levelled: turned by {roll:+.0f}°, no square that holds the head stays inside the photo":
        "未校平：需旋转 {roll:+.0f}°，但没有能容纳头部的正方形留在照片内",
    "{faces} faces; the largest is taken as the person": "{faces} 张脸；取最大的一张作为本人",
    "another person's face ({px} px) is inside the crop": "另一个人的脸（{px} 像素）在裁剪范围内",
    "tighter than the {framing} framing: the photo has no room for the {missing}; a photo with more around the head "
    "teaches more": "比 {framing} 取景更紧：照片里容不下{missing}；头部周围空间更多的照片能教给模型更多",
    "small face: the crop is {side} px, stretched {scale:.1f}x to {resolution}; too small to upscale honestly, use a "
    "closer or larger photo": "脸太小：裁剪为 {side} 像素，放大 {scale:.1f} 倍到 {resolution}；太小，无法如实放大，请使用更近或更大的照片",
    "the upscaler moved the face's identity by {drift:.2f} (over {most})": "放大器使脸的身份特征偏移了 {drift:.2f}（超过 {most}）",
    "blurry face (sharpness {blur:.0f}, below {least:.0f})": "脸部模糊（清晰度 {blur:.0f}，低于 {least:.0f}）",
    "near-duplicate of {name} (pHash within {bits} bits)": "与 {name} 几乎重复（pHash 相差不超过 {bits} 位）",
    "identity outlier: {distance:.2f} from the others' average face (over {most}); is this somebody else?":
        "身份异常：与其他照片的平均脸相差 {distance:.2f}（超过 {most}）；这是别人吗？",
    # of the whole set (audit.coverage, the resolution note)
    "no three-quarter view or profile: all {n} photo(s) face the camera (head turned under {most:.0f} degrees); add "
    "some with the head turned to the side, or the LoRA will hardly draw the face from another angle":
        "没有四分之三侧脸或侧脸：全部 {n} 张照片都正对镜头（头部转动小于 {most:.0f} 度）；请加入一些头部转向侧面的照片，否则 LoRA 很难从其他角度画出这张脸",
    "one expression ({expression}) in all {n} photo(s); add some with another (neutral, smile, open mouth), or every "
    "image will wear it": "全部 {n} 张照片只有一种表情（{expression}）；请加入一些其他表情（平静、微笑、张嘴）的照片，否则每张图都会是这个表情",
    "neutral": "平静", "smile": "微笑", "open mouth": "张嘴",
    "The project now trains at {resolution} (resolution in {file}, was {before}), the crops' size.":
        "项目现在以 {resolution} 训练（{file} 中的 resolution，原为 {before}），即裁剪图的尺寸。",
}
