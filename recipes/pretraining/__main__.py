import sys

from recipes.pretraining.train import main

sys.exit(main())
