"""What one guest may report: a burst, then its rate; other guests are not touched."""

from __future__ import annotations

from trove_svc.conductor.rate import ReportRate


def test_a_burst_then_the_rate() -> None:
    now = [0.0]
    rate = ReportRate(rate=5.0, burst=30, clock=lambda: now[0])
    assert sum(rate.admit("i-1") for _ in range(100)) == 30
    now[0] = 1.0
    assert sum(rate.admit("i-1") for _ in range(100)) == 5
    now[0] = 1.125  # part of a token: not yet
    assert not rate.admit("i-1")
    now[0] = 1.25
    assert rate.admit("i-1")


def test_one_guests_flood_leaves_the_others_their_rate() -> None:
    now = [0.0]
    rate = ReportRate(rate=5.0, burst=30, clock=lambda: now[0])
    for _ in range(10_000):
        rate.admit("flooder")
    assert all(rate.admit("quiet") for _ in range(30))


def test_an_idle_guest_saves_up_to_its_burst_only() -> None:
    now = [0.0]
    rate = ReportRate(rate=5.0, burst=30, clock=lambda: now[0])
    rate.admit("i-1")
    now[0] = 3600.0
    assert sum(rate.admit("i-1") for _ in range(100)) == 30


def test_a_forgotten_guest_starts_afresh() -> None:
    now = [0.0]
    rate = ReportRate(rate=1.0, burst=2, clock=lambda: now[0])
    assert [rate.admit("i-1") for _ in range(3)] == [True, True, False]
    rate.forget("i-1")
    assert rate.admit("i-1")


def test_each_kind_of_report_has_its_own_bucket() -> None:
    now = [0.0]
    rate = ReportRate(rate=1.0, burst=2, clock=lambda: now[0])
    assert [rate.admit("i-1", "heartbeat") for _ in range(3)] == [True, True, False]
    assert rate.admit("i-1", "backup_report")
    rate.forget("i-1")
    assert rate.admit("i-1", "heartbeat")
