from bblogin._cli import main

raise SystemExit(main())
