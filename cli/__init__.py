"""The `adgen` command line (`cli.main`), outside the core: it registers the commands of the core
library and of the apps (workers, the web app, finetuning and adapters); nothing imports it."""
