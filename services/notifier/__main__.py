from services.notifier.app import MIGRATIONS, create_app
from services.notifier.settings import Settings
from shared.cli import main

main(settings_cls=Settings, create_app=create_app, migrations_dir=MIGRATIONS)
