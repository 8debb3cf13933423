"""NTU RGB+D 60 and 120: sample names, viewpoints and the official evaluation protocols.

A sample name is `SsssCcccPpppRrrrAaaa` (setup, camera, performer/subject, replication, action), e.g.
S001C002P003R002A013; RGB videos are `nturgb+d_rgb/<name>_rgb.avi` (1920×1080). NTU-60 is setups S001–S017
of NTU-120.

Viewpoint relative to the subject (the mapping SURREACT uses, valid for S001–S017): camera 1 → 45°; camera 2
with replication 2 or camera 3 with replication 1 → 0° (frontal); camera 2 with replication 1 or camera 3 with
replication 2 → 90° (side). Later setups moved the cameras, so their view is unknown (None).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from viewclr.data.index import (
    ALL,
    VIDEO_EXTENSIONS,
    DatasetSpec,
    Sample,
    Split,
    attach_frame_counts,
    filter_min_frames,
    note,
    read_names_file,
)
from viewclr.errors import DatasetError

NAME_PATTERN = re.compile(r"^S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})$")
RGB_FOLDER = "nturgb+d_rgb"
VIEWS = (0, 45, 90)

# Official action names, A1…A120 (A1–A60 are NTU-60).
# The class names and subject lists keep their hand layout (`# fmt: skip`): one name per line would be 120 lines.
CLASSES: tuple[str, ...] = (
    "drink water", "eat meal/snack", "brushing teeth", "brushing hair", "drop", "pickup", "throw",
    "sitting down", "standing up (from sitting position)", "clapping", "reading", "writing",
    "tear up paper", "wear jacket", "take off jacket", "wear a shoe", "take off a shoe", "wear on glasses",
    "take off glasses", "put on a hat/cap", "take off a hat/cap", "cheer up", "hand waving",
    "kicking something", "put something inside pocket / take out something from pocket",
    "hopping (one foot jumping)", "jump up", "make a phone call/answer phone", "playing with phone/tablet",
    "typing on a keyboard", "pointing to something with finger", "taking a selfie", "check time (from watch)",
    "rub two hands together", "nod head/bow", "shake head", "wipe face", "salute", "put the palms together",
    "cross hands in front (say stop)", "sneeze/cough", "staggering", "falling", "touch head (headache)",
    "touch chest (stomachache/heart pain)", "touch back (backache)", "touch neck (neckache)",
    "nausea or vomiting condition", "use a fan (with hand or paper)/feeling warm",
    "punching/slapping other person", "kicking other person", "pushing other person",
    "pat on back of other person", "point finger at the other person", "hugging other person",
    "giving something to other person", "touch other person's pocket", "handshaking",
    "walking towards each other", "walking apart from each other", "put on headphone", "take off headphone",
    "shoot at the basket", "bounce ball", "tennis bat swing", "juggling table tennis balls", "hush (quite)",
    "flick hair", "thumb up", "thumb down", "make ok sign", "make victory sign", "staple book",
    "counting money", "cutting nails", "cutting paper (using scissors)", "snapping fingers", "open bottle",
    "sniff (smell)", "squat down", "toss a coin", "fold paper", "ball up paper", "play magic cube",
    "apply cream on face", "apply cream on hand back", "put on bag", "take off bag",
    "put something into a bag", "take something out of a bag", "open a box", "move heavy objects",
    "shake fist", "throw up cap/hat", "hands up (both hands)", "cross arms", "arm circles", "arm swings",
    "running on the spot", "butt kicks (kick backward)", "cross toe touch", "side kick", "yawn",
    "stretch oneself", "blow nose", "hit other person with something", "wield knife towards other person",
    "knock over other person (hit with body)", "grab other person's stuff", "shoot at other person with a gun",
    "step on foot", "high-five", "cheers and drink", "carry something with other person",
    "take a photo of other person", "follow other person", "whisper in other person's ear",
    "exchange things with other person", "support somebody with one's hand (someone is sick, help him to walk)",
    "finger-guessing game (playing rock-paper-scissors)",
)  # fmt: skip

# Cross-subject training subjects (NTU-60 CS), and NTU-120's CSub list, which extends it.
CS_TRAIN_SUBJECTS = frozenset((1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38))
CSUB_TRAIN_SUBJECTS = CS_TRAIN_SUBJECTS | frozenset(
    (45, 46, 47, 49, 50, 52, 53, 54, 55, 56, 57, 58, 59, 70, 74, 78, 80, 81, 82, 83,
     84, 85, 86, 89, 91, 92, 93, 94, 95, 97, 98, 100, 103)
)  # fmt: skip
CV_TRAIN_CAMERAS = frozenset((2, 3))

# CVS (Varol et al., SURREACT): whole (setup, subject, replication, action) triplets are dropped when any
# member is one of these, on top of the missing-skeleton samples; a triplet needs all three views, each at
# least CVS_MIN_FRAMES long when frame counts are known.
CVS_EXTRA_DROPS = frozenset(("S013C003P019R002A027", "S012C003P015R002A060"))
CVS_MIN_FRAMES = 32


@dataclass(frozen=True)
class NTUName:
    setup: int
    camera: int
    subject: int
    replication: int
    action: int

    @property
    def view(self) -> int | None:
        return view_of(self.setup, self.camera, self.replication)


def parse_name(name: str) -> NTUName:
    """`S001C002P003R002A013` (optionally with `_rgb` and an extension) → its five fields."""
    stem = Path(name).name
    for ext in VIDEO_EXTENSIONS:
        if stem.lower().endswith(ext):
            stem = stem[: -len(ext)]
    stem = stem.removesuffix("_rgb")
    match = NAME_PATTERN.match(stem)
    if not match:
        raise DatasetError(f"'{name}' is not an NTU RGB+D sample name (SsssCcccPpppRrrrAaaa)")
    setup, camera, subject, replication, action = (int(g) for g in match.groups())
    if not (1 <= camera <= 3 and replication in (1, 2) and action >= 1 and setup >= 1 and subject >= 1):
        raise DatasetError(f"'{name}' has an impossible camera, replication, action, setup or subject id")
    return NTUName(setup, camera, subject, replication, action)


def view_of(setup: int, camera: int, replication: int) -> int | None:
    """Viewpoint in degrees relative to the subject, or None where the mapping is not known (S018+)."""
    if setup > 17:
        return None
    if camera == 1:
        return 45
    if (camera, replication) in ((2, 2), (3, 1)):
        return 0
    return 90


def canonical_name(name: str) -> str:
    n = parse_name(name)
    return f"S{n.setup:03d}C{n.camera:03d}P{n.subject:03d}R{n.replication:03d}A{n.action:03d}"


@cache
def missing_skeletons(version: int) -> frozenset[str]:
    """The official list of samples with missing or incomplete skeletons (NTU-60: 302, NTU-120: 535)."""
    text = resources.files("viewclr.data").joinpath(f"resources/ntu{version}_missing_skeletons.txt").read_text()
    return frozenset(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


class NTUDataset(DatasetSpec):
    """NTU RGB+D 60 (`version=60`, setups 1–17, 60 actions) or 120 (setups 1–32, 120 actions)."""

    def __init__(self, version: int):
        self.version = version
        self.name = f"ntu{version}"
        self.title = f"NTU RGB+D {version}"
        self.max_setup = 17 if version == 60 else 32
        self.classes = CLASSES[:version]
        if version == 60:
            self.protocols = ("cs", "cv", "cvs", "cvs0", "cvs45", "cvs90")
            self.default_protocol = "cvs"
        else:
            self.protocols = ("csub", "cset")
            self.default_protocol = "csub"

    # exclusion lists are a property of the real dataset; subclasses (e.g. a synthetic NTU) return empty sets
    def missing_skeletons(self) -> frozenset[str]:
        return missing_skeletons(self.version)

    def cvs_extra_drops(self) -> frozenset[str]:
        return CVS_EXTRA_DROPS

    def cvs_min_frames(self) -> int:
        return CVS_MIN_FRAMES

    def make_sample(self, name: str, path: str | None = None, num_frames: int | None = None) -> Sample | None:
        """A Sample for `name`, or None when the name belongs to the other NTU version's setups."""
        n = parse_name(name)
        if n.setup > self.max_setup:
            return None
        if n.action > len(self.classes):
            raise DatasetError(
                f"'{name}': action A{n.action:03d} is beyond the {len(self.classes)} classes of {self.title} "
                "(a dataset in NTU layout with its own actions names them in data.class_names)"
            )
        view = n.view
        return Sample(
            name=canonical_name(name),
            label=n.action - 1,
            path=path,
            view=None if view is None else str(view),
            subject=n.subject,
            camera=n.camera,
            setup=n.setup,
            num_frames=num_frames,
        )

    def scan(self, root: str | Path, labels_csv: str | None = None) -> list[Sample]:
        root = Path(root)
        if not root.is_dir():
            raise DatasetError(f"dataset root {root} is not a directory")
        folder = root / RGB_FOLDER if (root / RGB_FOLDER).is_dir() else root
        samples: dict[str, Sample] = {}
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() not in VIDEO_EXTENSIONS or not path.is_file():
                continue
            try:
                sample = self.make_sample(path.name, str(path))
            except DatasetError as err:
                raise DatasetError(f"{path}: {err}") from None
            if sample is None:
                continue
            if sample.name in samples:
                raise DatasetError(f"{sample.name} appears twice: {samples[sample.name].path} and {path}")
            samples[sample.name] = sample
        if not samples:
            raise DatasetError(
                f"no {self.title} videos under {folder} "
                f"(expected {RGB_FOLDER}/SsssCcccPpppRrrrAaaa_rgb.avi, or the .mp4 of a prepared cache)"
            )
        return attach_frame_counts(list(samples.values()), root)

    def from_names(self, names_file: str | Path) -> list[Sample]:
        samples = []
        for name, frames, line in read_names_file(names_file):
            try:
                sample = self.make_sample(name, None, frames)
            except DatasetError as err:
                raise DatasetError(f"{names_file} line {line}: {err}") from None
            if sample is not None:
                samples.append(sample)
        if not samples:
            raise DatasetError(f"{names_file} has no {self.title} samples (setups S001–S{self.max_setup:03d})")
        return samples

    def split(self, samples: list[Sample], protocol: str, options) -> Split:
        self.check_protocol(protocol)
        min_frames = options.min_frames if options.min_frames is not None else self.default_min_frames
        exclude = options.exclude_missing_skeletons
        if protocol.startswith("cvs"):
            train_view = protocol.removeprefix("cvs") or "0"
            return self._cvs(samples, int(train_view), protocol, min_frames, exclude is not False)
        left_out: list[str] = []
        if exclude:  # default (None): off, the official full-set sizes
            excluded = self.missing_skeletons()
            kept = [s for s in samples if s.name not in excluded]
            note(left_out, len(samples) - len(kept), "video", f"{self.missing_list} (data.exclude_missing_skeletons)")
            samples = kept
        samples = filter_min_frames(samples, min_frames, left_out)
        rules = {
            "cs": lambda s: s.subject in CS_TRAIN_SUBJECTS,
            "csub": lambda s: s.subject in CSUB_TRAIN_SUBJECTS,
            "cv": lambda s: s.camera in CV_TRAIN_CAMERAS,
            "cset": lambda s: s.setup % 2 == 0,
        }
        is_train = rules[protocol]
        return Split(
            self.name,
            protocol,
            train={ALL: [s for s in samples if is_train(s)]},
            test={ALL: [s for s in samples if not is_train(s)]},
            left_out=left_out,
        )

    @property
    def missing_list(self) -> str:
        return f"on NTU's missing-skeleton list ({len(self.missing_skeletons())} samples of {self.title})"

    def _cvs(self, samples: list[Sample], train_view: int, protocol: str, min_frames: int, exclude: bool) -> Split:
        """Cross-view-subject: CS-train subjects at one view; CS-test subjects at 0°, 45° and 90° apart. With
        `exclude` (data.exclude_missing_skeletons, default on for CVS) SURREACT's exclusions apply: its lists
        leave out triplets with a missing skeleton and two more samples."""
        missing = self.missing_skeletons() if exclude else frozenset()
        extra = self.cvs_extra_drops() if exclude else frozenset()
        min_frames = max(min_frames, self.cvs_min_frames())
        triplets: dict[tuple, dict[int, Sample]] = defaultdict(dict)
        no_view = 0
        for s in samples:
            if s.view is None:
                no_view += 1
                continue
            n = parse_name(s.name)
            triplets[(n.setup, n.subject, n.replication, n.action)][int(s.view)] = s
        train: list[Sample] = []
        test: dict[int, list[Sample]] = {view: [] for view in VIEWS}
        dropped = {"incomplete": 0, "missing": 0, "extra": 0, "short": 0}
        for group in triplets.values():
            members = group.values()
            reason = None
            if len(group) < len(VIEWS):
                reason = "incomplete"
            elif any(s.name in missing for s in members):
                reason = "missing"
            elif any(s.name in extra for s in members):
                reason = "extra"
            elif any(s.num_frames is not None and s.num_frames < min_frames for s in members):
                reason = "short"
            if reason is not None:
                dropped[reason] += 1
                continue
            subject = next(iter(members)).subject
            if subject in CS_TRAIN_SUBJECTS:
                train.append(group[train_view])
            else:
                for view in VIEWS:
                    test[view].append(group[view])
        order = {s.name: i for i, s in enumerate(samples)}
        train.sort(key=lambda s: order[s.name])
        left_out: list[str] = []
        note(left_out, no_view, "video", "no viewpoint relative to the subject (setups after S017)")
        note(left_out, dropped["incomplete"], "triplet", "not present at all three views (0°, 45°, 90°)")
        note(left_out, dropped["missing"], "triplet", f"{self.missing_list} (data.exclude_missing_skeletons)")
        extra_names = ", ".join(sorted(extra))
        note(
            left_out,
            dropped["extra"],
            "triplet",
            f"dropped by SURREACT's lists ({extra_names}) (data.exclude_missing_skeletons)",
        )
        note(left_out, dropped["short"], "triplet", f"shorter than {min_frames} frames (data.min_frames)")
        return Split(
            self.name,
            protocol,
            train={str(train_view): train},
            test={str(v): sorted(test[v], key=lambda s: order[s.name]) for v in VIEWS},
            left_out=left_out,
        )
