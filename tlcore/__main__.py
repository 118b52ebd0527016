from tlcore.cli import main

raise SystemExit(main())
