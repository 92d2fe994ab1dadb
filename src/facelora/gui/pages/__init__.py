"""One module per tab. Each `build(ws, current)` makes its tab inside the open Blocks and returns
a `Page`: the function that fills it for a project, and the components it fills."""
