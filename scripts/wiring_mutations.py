"""The mutations of stage 2's wiring that tests/test_stage2_wiring.py is known to catch, each applied and checked:

    python scripts/wiring_mutations.py            # every mutation (about 30 s each on 2 cores)
    python scripts/wiring_mutations.py --list     # the list only

Each mutation is one textual change of the package's source, made in a temporary copy that the test run imports
instead of the installed package; the run must fail. The command exits 1 when a mutation survives (a blind spot of
the tests) or no longer applies (the source moved on: update its text here), so this list cannot silently drift
from what the tests catch.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "viewclr"
TESTS = "tests/test_stage2_wiring.py"

# (what it breaks, file under src/viewclr, the text, its replacement)
MUTATIONS = [
    (
        "the gradient reversal layer's sign flipped (G would descend L_adv)",
        "models/heads.py",
        "return -ctx.coefficient * grad, None",
        "return ctx.coefficient * grad, None",
    ),
    (
        "Queue2's codes shifted by one place inside a batch, ids untouched",
        "methods/viewclr.py",
        "self.codes.push(codes, gathered=True",
        "self.codes.push(codes.roll(1, 0), gathered=True",
    ),
    ("Queue2 not aligned with Queue1 at stage 2's start", "methods/viewclr.py", "        self.align_queues()\n", "\n"),
    (
        "L_mix's targets swapped: λ on the partner's key, 1 − λ on the own",
        "methods/losses.py",
        "(lam * own_term + (1 - lam) * partner_term)",
        "((1 - lam) * own_term + lam * partner_term)",
    ),
    (
        "L_mix called with own and partner exchanged",
        "methods/viewclr.py",
        "queue, own, partner + offset, lam",
        "queue, partner + offset, own, lam",
    ),
    (
        "the mixed tensor takes G's view of the clip itself, not of its partner",
        "methods/viewclr.py",
        "* third[partner]",
        "* third",
    ),
    (
        "eq. 9's neighbour is the farthest key",
        "methods/losses.py",
        "return distance.argmin(dim=1)",
        "return distance.masked_fill(distance.isinf(), -1).argmax(dim=1)",
    ),
    (
        "eq. 9's neighbour searched with the mixed query instead of f(x)",
        "methods/viewclr.py",
        "nearest_neighbour(clean, queue, excluded)",
        "nearest_neighbour(query.detach(), queue, excluded)",
    ),
    (
        "L3D's sign flipped",
        "methods/losses.py",
        "distance = (code - queued_codes[index].detach()).norm(dim=1)",
        "distance = -(code - queued_codes[index].detach()).norm(dim=1)",
    ),
    (
        "L3D trains the auto-encoder (its code not taken through the frozen compressor)",
        "models/viewpoint.py",
        "frozen = {name: p.detach() for name, p in self.encoder.named_parameters()}",
        "frozen = dict(self.encoder.named_parameters())",
    ),
    (
        "L_R's sign flipped",
        "methods/losses.py",
        "return F.mse_loss(reconstruction, target)",
        "return -F.mse_loss(reconstruction, target)",
    ),
    (
        "L_R's target not detached (L_R would train G and fg1)",
        "methods/viewclr.py",
        "reconstruction_loss(out.reconstruction, out.inter.detach())",
        "reconstruction_loss(out.reconstruction, out.inter)",
    ),
    (
        "the adversary's G pass not detached from fg1 (fg1 would hear L_adv)",
        "methods/viewclr.py",
        "generated = self.generator.view(g.detach())",
        "generated = self.generator.view(g)",
    ),
    (
        "the code not standardised over its sub-batch (G and fg1 could give every video one code)",
        "models/viewpoint.py",
        "F.normalize(standardise_groups(self.autoencoder.code_through(inter), groups), dim=1)",
        "F.normalize(self.autoencoder.code_through(inter), dim=1)",
    ),
    (
        "f2's BatchNorm statistics also move in the mixed pass",
        "methods/viewclr.py",
        "        with frozen_statistics(backbone.f2_layers()):\n            _, query",
        "        with frozen_statistics(nn.Identity()):\n            _, query",
    ),
]


def run(description: str, relative: str, old: str, new: str) -> tuple[str, str]:
    """('caught' | 'SURVIVED' | 'DOES NOT APPLY', the first failing test or why)."""
    source = (PACKAGE / relative).read_text()
    if source.count(old) != 1:
        return "DOES NOT APPLY", f"{relative} holds the text {source.count(old)} times, not once"
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "viewclr"
        shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
        (copy / relative).write_text(source.replace(old, new))
        env = {**os.environ, "PYTHONPATH": tmp + os.pathsep + os.environ.get("PYTHONPATH", "")}
        probe = subprocess.run(
            [sys.executable, "-c", "import viewclr; print(viewclr.__file__)"],
            env=env,
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        if not probe.stdout.startswith(tmp):
            return "DOES NOT APPLY", f"the mutated copy is not what Python imports ({probe.stdout.strip()})"
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", TESTS],
            env=env,
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
    failed = [line.split(" ")[1] for line in done.stdout.splitlines() if line.startswith("FAILED ")]
    if done.returncode == 0:
        return "SURVIVED", "every test passed"
    return "caught", failed[0].split("::")[-1] if failed else f"pytest exit {done.returncode}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--list", action="store_true", help="print the mutations without running them")
    args = parser.parse_args()
    print("| mutation | result | caught by |\n|---|---|---|")
    bad = 0
    for description, relative, old, new in MUTATIONS:
        result, detail = ("–", "") if args.list else run(description, relative, old, new)
        bad += result in ("SURVIVED", "DOES NOT APPLY")
        print(f"| {description} ({relative}) | {result} | {detail} |", flush=True)
    if bad:
        print(f"{bad} mutation(s) survived or no longer apply", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
