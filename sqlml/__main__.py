import sys

from sqlml.cli import main

sys.exit(main())
