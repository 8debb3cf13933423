"""Entry point kept beside the repository: the benchmark lives in the package (viewclr.studies.benchmarks.batchnorm),
so that it runs from an installed package too."""

from viewclr.studies.benchmarks.batchnorm import main

if __name__ == "__main__":
    raise SystemExit(main())
