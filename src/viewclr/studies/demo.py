"""`viewclr demo` (what `make demo` runs): the paper's comparison in miniature on a laptop's CPU.

1. render the built-in synthetic benchmark (16 subjects × 12 actions × 3 cameras × 2 replications, 64 px);
2. `viewclr compare` of InfoNCE and ViewCLR on the CVS protocol's training videos (CS-train subjects at 0°): MoCo
   stage 1 shared, then ViewCLR stage 2, and the InfoNCE baseline continued from stage 1 for the same total
   epochs; linear probes tested at 0°, 45° and 90°;
3. print the table, write runs/demo/results.md, per_view.png and a report with plots, runs/demo/report.md.

Everything already made is reused: a second `make demo` only prints the table again.

The demo renders its dataset into OUT/synth and reads nothing else: `data.root` and `data.dataset` cannot be set
for it (a root that held a user's videos would be read as, and rendered over, the benchmark), and the rendering
itself refuses any folder that is not its own (`generate.claim_folder`).
"""

from __future__ import annotations

import time
from pathlib import Path

from viewclr.config import load_config, parse_override
from viewclr.errors import ConfigError
from viewclr.fileio import folder_lock, read_json, write_json
from viewclr.runtime import check_precision, choose_device
from viewclr.studies.compare import claim_output, compare, evaluation_table
from viewclr.synth.world import SynthSettings

DEMO_METHODS = ["infonce", "viewclr"]
DEMO_SIZE = 64  # rendered at the size the CPU preset trains at: no resizing when decoding
FIXED = ("data.root", "data.dataset", "data.labels_csv")  # the demo's data is its own rendering


def run_demo(
    config: str | Path = "synth_cpu",
    out: str | Path = "runs/demo",
    overrides: list[str] | None = None,
    progress: bool = True,
    synth: SynthSettings | None = None,
) -> Path:
    """Run the demo; returns the path of its report. `synth`: another dataset than the demo's (tests)."""
    started = time.perf_counter()
    out = Path(out)
    for item in overrides or []:
        key = parse_override(item)[0]
        if key in FIXED or key == "data":
            raise ConfigError(
                key,
                f"viewclr demo renders and reads its own dataset ({out / 'synth'}); it cannot be "
                "set. For your own videos: `viewclr compare` or `viewclr pretrain`",
            )
    if config is not None and (preset := load_config(config).data.dataset) != "synth":
        raise ConfigError(
            "data.dataset",
            f"viewclr demo runs on the synthetic benchmark (synth); {config} sets "
            f"'{preset}'. Give a preset of the synthetic benchmark (e.g. synth_cpu)",
        )
    fixed = [*(overrides or []), "data.dataset=synth", f"data.root={out / 'synth'}"]
    cfg = load_config(config, fixed)
    check_precision(cfg.train, choose_device(cfg.train.device))  # before rendering
    claim_output(out, "demo")
    with folder_lock(out, "viewclr demo"):
        return _demo(config, out, cfg, fixed, synth, progress, started)


def _demo(config, out: Path, cfg, fixed: list[str], synth: SynthSettings | None, progress: bool, started) -> Path:
    from viewclr.synth.generate import generate
    from viewclr.synth.preview import contact_sheet

    settings = synth or SynthSettings(size=DEMO_SIZE)
    print(f"[1/3] synthetic benchmark → {cfg.data.root}", flush=True)
    generate(settings, cfg.data.root, progress=progress)
    preview = out / "synth_preview.png"
    if not preview.is_file():
        contact_sheet(settings, preview)
    print(
        f"[2/3] InfoNCE and ViewCLR, {cfg.train.stage1_epochs} + {cfg.train.stage2_epochs} epochs each (stage 1 "
        "shared), and their linear probes",
        flush=True,
    )
    done = compare(config, out, DEMO_METHODS, [cfg.seed], ["probe"], fixed, progress=progress)
    table = evaluation_table(done["table"], done["per_seed"], DEMO_METHODS, "probe")
    print("[3/3] report", flush=True)
    seconds = time.perf_counter() - started
    timings_path = out / "timings.json"
    timings = read_json(timings_path)
    timings = timings if isinstance(timings, dict) else {}
    timings.setdefault("demo/first_run_seconds", round(seconds, 1))
    write_json(timings_path, timings)
    text = (
        "# viewclr demo: CVS on the synthetic benchmark (linear probe, top-1 %)\n\n"
        "Trained on CS-train subjects at 0°; tested on unseen subjects at 0°, 45° and 90°. "
        f"Chance is {100 / settings.classes:.1f}%.\n\n{table}\n\n"
        f"Wall time of the first run: {timings['demo/first_run_seconds'] / 60:.1f} min (this run: {seconds:.0f} s). "
        "Report with plots: report.md; per-view bars: per_view.png.\n"
    )
    (out / "results.md").write_text(text)
    path = out / "report.md"
    print(f"\n{table}\n\ndemo finished in {seconds / 60:.1f} min; report: {path} (table: {out / 'results.md'})")
    return path
