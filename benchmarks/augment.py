"""Entry point kept beside the repository: the benchmark lives in the package (viewclr.studies.benchmarks.augment),
so that `viewclr bench` runs from an installed package too."""

from viewclr.studies.benchmarks.augment import main

if __name__ == "__main__":
    raise SystemExit(main())
