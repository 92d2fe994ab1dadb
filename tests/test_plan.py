import pytest

from facelora.config import TrainConfig
from facelora.plan import plan_for, saved_epochs, solve_repeats, steps_per_epoch


def plan_from_budget(images, epochs, max_train_steps, batch_size=1, output_name="lora", num_processes=1):
    """The tutorial's planning through the one entry point: repeats solved from the budget."""
    cfg = TrainConfig(max_train_epochs=epochs, max_train_steps=max_train_steps, train_batch_size=batch_size,
                      output_name=output_name)
    return plan_for(cfg, images, num_processes, budget=True)


def make_plan(images, repeats, batch_size, output_name, max_train_epochs, max_train_steps):
    """A plan for a number of images at a given repeats, through the one entry point."""
    cfg = TrainConfig(max_train_epochs=max_train_epochs, max_train_steps=max_train_steps,
                      train_batch_size=batch_size, output_name=output_name)
    return plan_for(cfg, images, repeats=repeats)


def test_tutorial_example():
    # 4800 steps, 32 images, 10 epochs, batch 1 -> 15 repeats, exactly 4800 steps.
    assert solve_repeats(4800, 32, 10, 1) == 15
    plan = plan_from_budget(32, 10, 4800, 1, output_name="scarlett")
    assert (plan.repeats, plan.steps_per_epoch, plan.total_steps) == (15, 480, 4800)
    assert plan.saved_files[0] == "scarlett-000001.safetensors"
    assert plan.saved_files[-1] == "scarlett.safetensors"
    assert len(plan.saved_files) == 10
    assert plan.notes == []


def test_rounding_to_nearest_and_at_least_one():
    assert solve_repeats(1000, 30, 10) == 3  # 3.33 -> 3
    assert solve_repeats(1100, 30, 10) == 4  # 3.67 -> 4
    assert solve_repeats(10, 100, 10) == 1  # 0.01 -> at least 1


def test_rounded_plan_reports_real_steps():
    plan = plan_from_budget(30, 10, 1000)
    assert plan.repeats == 3 and plan.total_steps == 900
    assert any("900 steps" in n for n in plan.notes)


def test_batch_above_one():
    # batch 2 doubles the repeats for the same step budget; steps per epoch = ceil(images*repeats/batch)
    assert solve_repeats(4800, 32, 10, 2) == 30
    plan = plan_from_budget(32, 10, 4800, 2)
    assert plan.steps_per_epoch == 480 and plan.total_steps == 4800
    assert steps_per_epoch(15, 2) == 8  # odd count: the last batch is partial


def test_processes_and_accumulation_share_the_epoch():
    assert steps_per_epoch(480, 1, num_processes=2) == 240
    assert steps_per_epoch(480, 1, accumulation=4) == 120
    plan = plan_from_budget(32, 10, 4800, 1, num_processes=2)
    assert plan.repeats == 30 and plan.total_steps == 4800


def test_max_train_epochs_overrides_steps():
    plan = make_plan(10, 5, 1, "x", max_train_epochs=3, max_train_steps=99999)
    assert plan.total_steps == 150 and plan.epochs == 3
    plan = make_plan(10, 5, 1, "x", max_train_epochs=None, max_train_steps=120)
    assert plan.total_steps == 120 and plan.epochs == 3 and plan.epoch_of_step(101) == 3


def test_saved_files_follow_save_every_and_last_n():
    assert saved_epochs(10, 2) == [2, 4, 6, 8, 10]
    # Kohya keeps the newest n epoch files (get_remove_epoch_no) and the final file
    assert saved_epochs(10, 1, save_last_n_epochs=3) == [7, 8, 9, 10]
    assert saved_epochs(10, 2, save_last_n_epochs=2) == [6, 8, 10]
    assert saved_epochs(5, None) == [5]


def test_invalid_budget():
    with pytest.raises(ValueError):
        solve_repeats(100, 0, 10)


def test_accumulation_and_save_last_n_are_in_the_budget_plan():
    # the bug of issue 15: 32 images, 10 epochs, gradient_accumulation_steps 2 planned 4800 steps
    # (15 repeats) while training ran 2400; an optimizer step takes 2 batches, so 30 repeats
    cfg = TrainConfig(max_train_epochs=10, max_train_steps=4800, gradient_accumulation_steps=2,
                      save_last_n_epochs=2, output_name="x")
    plan = plan_for(cfg, 32, budget=True)
    assert (plan.repeats, plan.steps_per_epoch, plan.total_steps) == (30, 480, 4800)
    assert plan.saved_files == ["x-000008.safetensors", "x-000009.safetensors", "x.safetensors"]
    # the project's own repeats (15): 240 steps an epoch, 2400 in all, as training counts them
    plan = plan_for(cfg, 32, repeats=15)
    assert (plan.steps_per_epoch, plan.total_steps) == (240, 2400)
