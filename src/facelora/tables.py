"""The plan as a two-column rich table: `facelora plan` prints it, and so does training at its
start (with the device and precision added), so both read the same."""

from __future__ import annotations

from rich.table import Table

from .plan import Plan


def plan_table(plan: Plan, title: str = "Training plan", extra: tuple[tuple[str, object], ...] = ()) -> Table:
    t = Table(title=title, show_header=False, title_justify="left")
    t.add_column(style="bold")
    t.add_column()
    rows: list[tuple[str, object]] = [
        ("images", plan.images), ("repeats", plan.repeats), ("epochs", plan.epochs),
        ("batch size", plan.batch_size),
    ]
    if plan.num_processes > 1:
        rows.append(("processes", plan.num_processes))
    if plan.gradient_accumulation_steps > 1:
        rows.append(("gradient accumulation", plan.gradient_accumulation_steps))
    if plan.validation_images:
        shown = ", ".join(plan.validation_photos[:8]) + (" ..." if len(plan.validation_photos) > 8 else "")
        rows.append(("held out for validation", f"{plan.validation_images}: {shown}"))
    if plan.reg_images:
        rows.append(("class images (reg)", f"{plan.reg_images}, cycled to {plan.reg_samples} per epoch "
                                           f"= the images x repeats (Kohya)"))
    rows += [
        ("images x repeats per epoch", plan.samples_per_epoch),
        ("steps per epoch", plan.steps_per_epoch), ("total steps", plan.total_steps),
        *extra,
        ("files saved", "\n".join(plan.saved_files)),
    ]
    for k, v in rows:
        t.add_row(k, str(v))
    return t
