"""`python -m tfclassify COMMAND [FLAGS]`: the `tfclassify` console command."""

import sys

from tfclassify import cli

if __name__ == "__main__":
    sys.exit(cli.main())
