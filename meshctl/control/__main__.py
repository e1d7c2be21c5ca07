import sys

from meshctl.control.main import main

sys.exit(main())
