import sys

from speechrep.cli import main

sys.exit(main())
