"""The thread tuner keeps the faster of one and all threads; small problems use one thread."""

import torch

from psae.training.threads import SMALL_STEP_FLOPS, ThreadTuner, plan_threads


class FakeMachine:
    """A clock whose steps take ``cost[threads]`` seconds."""

    def __init__(self, cost):
        self.cost, self.t, self.threads, self.log = dict(cost), 0.0, None, []

    def clock(self):
        return self.t

    def set_threads(self, n):
        self.threads = n
        self.log.append(n)

    def run(self, tuner, steps):
        for _ in range(steps):
            tuner.before_step()
            self.t += self.cost[self.threads]
            tuner.after_step()


def test_moves_to_one_thread_when_two_stall_and_back_when_the_machine_frees_up():
    m = FakeMachine({2: 0.030, 1: 0.010})  # a busy neighbour: two threads stall
    tuner = ThreadTuner(2, period=1.0, clock=m.clock, set_threads=m.set_threads)
    m.run(tuner, 30)
    assert tuner.current == 1 and m.threads == 1 and tuner.switches == 1
    m.cost = {2: 0.005, 1: 0.010}  # the neighbour is gone
    m.run(tuner, 400)
    assert tuner.current == 2 and m.threads == 2 and tuner.switches == 2


def test_noise_below_the_margin_does_not_flip_and_probes_are_rare():
    m = FakeMachine({2: 0.010, 1: 0.0095})  # 5 % apart: not worth a switch
    tuner = ThreadTuner(2, period=1.0, clock=m.clock, set_threads=m.set_threads)
    m.run(tuner, 1000)
    assert tuner.switches == 0 and tuner.current == 2
    probe_steps = sum(1 for a, b in zip(m.log, m.log[1:], strict=False) if (a, b) == (2, 1))
    assert 5 <= probe_steps <= 11  # about one probe per second of training (10 s here)


def test_plan_uses_one_thread_for_small_problems_and_honours_a_fixed_count():
    cpu = torch.device("cpu")
    assert plan_threads("auto", SMALL_STEP_FLOPS / 2, cpu, available=2) == (1, False)
    assert plan_threads("auto", SMALL_STEP_FLOPS * 5, cpu, available=2) == (2, True)
    assert plan_threads(2, SMALL_STEP_FLOPS / 2, cpu, available=2) == (2, False)
    assert plan_threads("auto", SMALL_STEP_FLOPS * 5, cpu, available=1) == (1, False)


def test_fit_restores_the_callers_thread_count(digits):
    from psae import SparseAutoencoder

    before = torch.get_num_threads()
    model = SparseAutoencoder(n_components=10, epochs=4, random_state=0, device="cpu")
    model.fit(digits[0])
    assert torch.get_num_threads() == before
    assert {h["threads"] for h in model.history_} == {1}  # digits is a small problem
