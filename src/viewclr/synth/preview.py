"""A contact sheet of the synthetic benchmark: every class (rows) from every view (column groups), a few frames
of the action each, so a person can see what the benchmark asks a model to recognise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from viewclr.synth.actions import ACTIONS
from viewclr.synth.generate import render_performance
from viewclr.synth.world import SynthSettings, make_performance, make_setup

LABEL_WIDTH = 170
HEADER = 22
GAP = 6


def contact_sheet(
    settings: SynthSettings, path: str | Path, *, subject: int = 1, setup: int = 1, frames_per_view: int = 4
) -> Path:
    """Render replication 1 of every class by `subject` in `setup` and save the sheet as an image."""
    settings.validate()
    size = settings.size
    rows, order, titles = [], None, None
    for action in range(1, settings.classes + 1):
        p = make_performance(settings, make_setup(settings.seed, setup), subject, 1, action)
        videos = render_performance(settings, p)
        if order is None:  # views left to right by angle: 0°, 45°, 90° for NTU's rig
            order = sorted(range(len(p.views)), key=lambda i: (abs(float(p.views[i].view)), p.views[i].index))
            titles = [f"{p.views[i].view}° (camera {p.views[i].index})" for i in order]
        m = p.motion
        times = m.start + m.duration * (np.arange(frames_per_view) + 0.5) / frames_per_view
        picks = np.clip(np.round(times * (settings.frames - 1)).astype(int), 0, settings.frames - 1)
        groups = [np.concatenate([videos[i][f] for f in picks], axis=1) for i in order]
        gap = np.full((size, GAP, 3), 255, np.uint8)
        rows.append(np.concatenate([part for g in groups for part in (g, gap)][:-1], axis=1))
    grid = np.concatenate(rows, axis=0)
    sheet = Image.new("RGB", (LABEL_WIDTH + grid.shape[1], HEADER + grid.shape[0]), "white")
    sheet.paste(Image.fromarray(grid), (LABEL_WIDTH, HEADER))
    draw, font = ImageDraw.Draw(sheet), ImageFont.load_default()
    group_width = frames_per_view * size + GAP
    for k, title in enumerate(titles or []):
        draw.text((LABEL_WIDTH + k * group_width + 4, 5), title, fill="black", font=font)
    for row in range(settings.classes):
        draw.text(
            (6, HEADER + row * size + size // 2 - 6), f"A{row + 1:03d} {ACTIONS[row].name}", fill="black", font=font
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path
