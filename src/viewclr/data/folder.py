"""Any folder of videos plus a labels CSV: `path,label[,view][,subject]` — for users' own data.

`path` is relative to the dataset root (or absolute); `label` is a class index or a class name (names are
numbered in sorted order); `view` and `subject` are optional and enable the `cross_view` and `cross_subject`
protocols. A header row (`path,label,...`) is optional and may name the columns in any order.
`viewclr prepare` writes `labels.csv` beside the cached videos, so a cache is used the same way.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

from viewclr.data.index import ALL, DatasetSpec, Sample, Split, attach_frame_counts, filter_min_frames
from viewclr.errors import DatasetError

log = logging.getLogger(__name__)

COLUMNS = ("path", "label", "view", "subject")
DEFAULT_CSV = "labels.csv"


def read_labels_csv(csv_path: Path) -> list[dict[str, str]]:
    """Rows as dicts with the keys in COLUMNS that the file has, each tagged with its line number."""
    if not csv_path.is_file():
        raise DatasetError(f"labels CSV {csv_path} does not exist")
    with csv_path.open(newline="") as handle:
        rows = [row for row in csv.reader(handle)]
    header = [c.strip().lower() for c in rows[0]] if rows else []
    if "path" in header:
        unknown = [c for c in header if c not in COLUMNS]
        if unknown or "label" not in header or len(set(header)) != len(header):
            raise DatasetError(f"{csv_path}: header must name path,label[,view][,subject]; got {','.join(header)}")
        columns, body, first_line = header, rows[1:], 2
    else:
        columns, body, first_line = list(COLUMNS), rows, 1
    records = []
    for number, row in enumerate(body, start=first_line):
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        if len(row) < 2 or len(row) > len(columns):
            raise DatasetError(f"{csv_path} line {number}: expected path,label[,view][,subject], got {row}")
        record = {key: value.strip() for key, value in zip(columns, row, strict=False)}
        record["line"] = str(number)
        records.append(record)
    if not records:
        raise DatasetError(f"labels CSV {csv_path} lists no videos")
    return records


class FolderDataset(DatasetSpec):
    name = "folder"
    title = "video folder"
    protocols = ("all", "cross_view", "cross_subject")
    default_protocol = "all"

    def scan(self, root: str | Path, labels_csv: str | None = None) -> list[Sample]:
        root = Path(root)
        if not root.is_dir():
            raise DatasetError(f"dataset root {root} is not a directory")
        csv_path = Path(labels_csv) if labels_csv else root / DEFAULT_CSV
        records = read_labels_csv(csv_path)
        labels = [r["label"] for r in records]
        if all(label.lstrip("-").isdigit() for label in labels):
            values = [int(label) for label in labels]
            if min(values) < 0:
                raise DatasetError(f"{csv_path}: class indices must be >= 0")
            self.classes = tuple(str(i) for i in range(max(values) + 1))
        else:
            self.classes = tuple(sorted(set(labels)))
            values = [self.classes.index(label) for label in labels]
        samples, missing, seen = [], [], {}
        for record, label in zip(records, values, strict=True):
            path = Path(record["path"])
            path = path if path.is_absolute() else root / path
            if not path.exists():
                missing.append(str(path))
                continue
            subject = record.get("subject") or None
            if subject is not None and not subject.lstrip("-").isdigit():
                raise DatasetError(f"{csv_path} line {record['line']}: subject '{subject}' is not an integer")
            name = Path(record["path"]).with_suffix("").as_posix()
            if name in seen:
                raise DatasetError(f"{csv_path} line {record['line']}: {name} is listed twice")
            seen[name] = True
            samples.append(
                Sample(
                    name=name,
                    label=label,
                    path=str(path),
                    view=record.get("view") or None,
                    subject=int(subject) if subject is not None else None,
                )
            )
        if not samples:
            raise DatasetError(f"none of the {len(records)} files listed in {csv_path} exist under {root}")
        if missing:
            log.warning(
                "%d of %d files listed in %s do not exist and are left out (first: %s)",
                len(missing),
                len(records),
                csv_path,
                missing[0],
            )
        return attach_frame_counts(samples, root)

    def split(self, samples: list[Sample], protocol: str, options) -> Split:
        self.check_protocol(protocol)
        min_frames = options.min_frames if options.min_frames is not None else self.default_min_frames
        left_out: list[str] = []
        samples = filter_min_frames(samples, min_frames, left_out)
        if protocol == "all":
            return Split(self.name, protocol, train={ALL: samples}, test={}, left_out=left_out)
        if protocol == "cross_view":
            if any(s.view is None for s in samples):
                raise DatasetError("protocol cross_view needs a view column in the labels CSV")
            train_views = {str(v) for v in options.train_views}
            if not train_views:
                raise DatasetError("protocol cross_view needs data.train_views, e.g. data.train_views=[front]")
            test_views = sorted({s.view for s in samples} - train_views)
            return Split(
                self.name,
                protocol,
                train={ALL: [s for s in samples if s.view in train_views]},
                test={v: [s for s in samples if s.view == v] for v in test_views},
                left_out=left_out,
            )
        if any(s.subject is None for s in samples):
            raise DatasetError("protocol cross_subject needs a subject column in the labels CSV")
        train_subjects = set(options.train_subjects)
        if not train_subjects:
            raise DatasetError("protocol cross_subject needs data.train_subjects, e.g. data.train_subjects=[1,2]")
        return Split(
            self.name,
            protocol,
            train={ALL: [s for s in samples if s.subject in train_subjects]},
            test={ALL: [s for s in samples if s.subject not in train_subjects]},
            left_out=left_out,
        )
