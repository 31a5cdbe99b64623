"""evaluate/confidence.py: bootstrap intervals over files, alone and paired, and its command."""
import json
import random

import pytest

from evaluate.confidence import interval, main, paired_difference, pooled_report, saved_over, summary_lines


def counts(n_files, saved, seed=0, spread=0.0, chars=400):
    """file -> (chars, keystrokes) with keystrokes saved `saved` +- uniform `spread` per file."""
    rng = random.Random(seed)
    return {f"f{i}.py": (chars, round(chars * (1 - saved - rng.uniform(-spread, spread)))) for i in range(n_files)}


def test_the_interval_holds_the_figure_and_narrows_with_more_files():
    few, many = counts(8, 0.6, spread=0.2), counts(128, 0.6, spread=0.2)
    a, b = interval(few), interval(many)
    assert a.low <= a.value <= a.high and b.low <= b.value <= b.high
    assert a.value == pytest.approx(saved_over(few, few), abs=1e-12)
    assert (b.high - b.low) < 0.5 * (a.high - a.low)
    same = interval(counts(10, 0.5))  # every file alike: nothing varies
    assert same.low == same.high == pytest.approx(0.5)
    with pytest.raises(ValueError):
        interval({})


def test_pairing_tells_apart_a_difference_each_figure_alone_cannot():
    """Files differ a lot in difficulty (saved 0.3-0.9), B saves 1 point more on every file: the two intervals
    overlap, the paired one excludes 0. Against itself the difference is exactly 0."""
    a = counts(30, 0.6, spread=0.3)
    b = {f: (c, k - 4) for f, (c, k) in a.items()}  # 4 fewer keystrokes of 400 characters in every file
    ia, ib = interval(a), interval(b)
    assert ia.high > ib.low  # alone: not told apart
    d = paired_difference(a, b)
    assert d.value == pytest.approx(0.01) and d.excludes_zero() and 0 < d.low <= d.value <= d.high
    zero = paired_difference(a, a)
    assert zero.value == zero.low == zero.high == 0 and not zero.excludes_zero()
    # Noise without a direction: +-1 point per file at random; the interval holds 0.
    rng = random.Random(1)
    c = {f: (ch, k + rng.choice((-4, 4))) for f, (ch, k) in a.items()}
    assert not paired_difference(a, c).excludes_zero()


def test_only_the_files_both_typed_are_paired():
    a = counts(10, 0.5)
    b = {**{f: v for f, v in list(a.items())[:5]}, "other.py": (400, 0)}
    d = paired_difference(a, b)
    assert d.files == 5 and d.value == 0
    with pytest.raises(ValueError, match="share no"):
        paired_difference(a, {"x.py": (1, 1)})


def report(columns, per_column):
    files = sorted({f for c in per_column.values() for f in c})
    rows = []
    for f in files:
        row = {"file": f}
        for col in columns:
            if f in per_column[col]:
                row[f"chars_typed_{col}"], row[f"keystrokes_{col}"] = per_column[col][f]
        rows.append(row)
    return {"columns": columns, "files": rows}


def test_summary_lines_give_the_suffix_gain(tmp_path):
    without = counts(20, 0.55, spread=0.2)
    with_suffix = {f: (c, k - 16) for f, (c, k) in without.items()}  # 4 points more everywhere
    lines = summary_lines(report(["auto_middle", "auto_middle-nosuffix"],
                                 {"auto_middle": with_suffix, "auto_middle-nosuffix": without}))
    assert lines[0].startswith("95 % intervals") and "auto_middle-nosuffix" in lines[0]
    assert lines[1].startswith("The suffix's gain (auto_middle - auto_middle-nosuffix): +4.0 points")
    assert summary_lines(report(["auto"], {"auto": counts(1, 0.5)})) == []  # one file: no interval


def test_command_one_report_and_two(tmp_path, capsys):
    a = counts(20, 0.6, spread=0.2)
    b = {f: (c, k - 8) for f, (c, k) in a.items()}
    ra, rb = tmp_path / "a.json", tmp_path / "b.json"
    ra.write_text(json.dumps(report(["auto", "auto_middle"], {"auto": a, "auto_middle": a})))
    rb.write_text(json.dumps(report(["auto"], {"auto": b})))
    sa = 100 * saved_over(a, a)
    assert main([str(ra)]) == 0
    out = capsys.readouterr().out
    assert f"auto: {sa:.1f} % (95 % interval" in out and "auto_middle:" in out
    assert main([str(ra), str(rb)]) == 0  # only the shared column
    out = capsys.readouterr().out
    assert out.startswith(f"auto: {sa + 2:.1f} % (B) - {sa:.1f} % (A) = +2.0 points") and "not told apart" not in out
    assert main([str(ra), str(ra), "--columns", "auto"]) == 0
    assert "not told apart" in capsys.readouterr().out
    assert main([str(ra), str(rb), "--columns", "auto_middle"]) == 2
    assert "not in every report" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main([str(bad)]) == 2
    assert main([str(tmp_path / "missing.json")]) == 2


def test_reports_joined_by_plus_are_pooled_by_file(tmp_path, capsys):
    """The same files typed at two places: a file's characters and keystrokes are summed over both reports (the
    file stays the unit resampled); a file typed in only one of them is left out."""
    top, middle = counts(6, 0.5), counts(6, 0.7, chars=200)
    middle["only_here.py"] = (300, 0)
    pooled = pooled_report([report(["auto"], {"auto": top}), report(["auto", "x"], {"auto": middle, "x": middle})])
    assert pooled["columns"] == ["auto"]
    assert {r["file"]: (r["chars_typed_auto"], r["keystrokes_auto"]) for r in pooled["files"]} == {
        f: (top[f][0] + middle[f][0], top[f][1] + middle[f][1]) for f in top}
    paths = []
    for name, data in (("top.json", top), ("mid.json", middle)):
        paths.append(tmp_path / name)
        paths[-1].write_text(json.dumps(report(["auto"], {"auto": data})))
    assert main(["+".join(map(str, paths))]) == 0
    expected = 100 * (1 - sum(top[f][1] + middle[f][1] for f in top) / sum(top[f][0] + middle[f][0] for f in top))
    assert capsys.readouterr().out.startswith(f"auto: {expected:.1f} % (95 % interval")
    assert main([f"{paths[0]}+{tmp_path / 'missing.json'}"]) == 2
