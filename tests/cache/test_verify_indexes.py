"""Issue 24.17: the lockfile indexes the hit path trusts are verified too. An index rewritten to
name another cached tree made `which`/`run` serve that tree while `cache verify` said all was
intact; the full path kept such an index as long as it parsed."""

from __future__ import annotations

import os
from pathlib import Path

from tf import assert_error, assert_ok, host, run_toolfetch, tf_main

from toolfetch.core import lockindex


def _index(cache: Path, lockfile: Path) -> Path:
    return Path(lockindex.index_path(str(cache), os.path.realpath(lockfile)))


def _say_points_at_greet(index: Path) -> None:
    """Rewrite say's entries as greet's (another sound cached tree), keeping every header."""
    lines = index.read_text().split("\n")
    greet = next(f for f in (line.split("\t") for line in lines)
                 if f[:3] == ["tool", "greet", host()])
    out = []
    for line in lines:
        f = line.split("\t")
        if f[:2] == ["tool", "say"]:
            line = "\t".join(["tool", "say", f[2], *greet[3:]])
        out.append(line)
    assert out != lines
    index.write_text("\n".join(out))


def _which_say(example: Path, *flags: str) -> str:
    r = run_toolfetch(*flags, "which", "--lockfile", example, "say")
    assert_ok(r)
    return r.stdout.strip()


def test_verify_names_a_rewritten_index_and_repair_drops_it(example: Path,
                                                           cache_dir: Path) -> None:
    assert_ok(tf_main("fetch", "--lockfile", example, "--all-platforms"))
    say = _which_say(example)
    assert say.endswith("/say")
    index = _index(cache_dir, example)
    _say_points_at_greet(index)
    assert _which_say(example).endswith("/greet")  # the hit path trusts the index (by design)
    r = run_toolfetch("cache", "verify", "--lockfile", example)
    assert_error(r, 3, "1 bad cache entries")
    assert f"bad index sha256:{index.name}: lists other trees or paths than" in r.stderr
    r = run_toolfetch("cache", "verify", "--repair", "--lockfile", example)
    assert_ok(r)
    assert _which_say(example) == say
    assert_ok(run_toolfetch("cache", "verify", "--lockfile", example))


def test_the_full_path_replaces_an_index_it_cannot_re_derive(example: Path,
                                                             cache_dir: Path) -> None:
    assert_ok(tf_main("fetch", "--lockfile", example, "--all-platforms"))  # greet's trees too
    say = _which_say(example)
    _say_points_at_greet(_index(cache_dir, example))
    assert _which_say(example).endswith("/greet")  # the hit path trusts it (by design)
    assert _which_say(example, "-v") == say  # the full path reads the lockfile itself
    assert _which_say(example) == say  # and wrote the index anew: the hit path agrees
    index = _index(cache_dir, example)
    _say_points_at_greet(index)  # and one that claims the schema passed as well
    index.write_text(index.read_text().replace("validated\t0", "validated\t1"))
    assert _which_say(example).endswith("/greet")
    assert_ok(run_toolfetch("-v", "fetch", "--lockfile", example))
    assert _which_say(example) == say
