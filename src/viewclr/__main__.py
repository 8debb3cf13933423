import sys

from viewclr.cli import main

sys.exit(main())
