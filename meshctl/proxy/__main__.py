import sys

from meshctl.proxy.main import main

sys.exit(main())
