"""The service for the store benchmark, in its own process, with or without the store on the
call path: `python -m benchmarks.store_server PORT none|sqlite|postgresql [URL]`.

Local mode (no caller JWT), logging at WARNING. "none" still opens an embedded store (feedback
needs one) but the engine is given none, so a call never touches it.
"""

import sys
import tempfile
from pathlib import Path

import uvicorn

from iris_prompt.app import create_app
from iris_prompt.codesets.files import default_codesets_dir
from iris_prompt.codesets.live import SERVICE_CHECKS, CodeSetRegistry
from iris_prompt.engine.service import Engine, build_registry
from iris_prompt.settings import Settings
from iris_prompt.store.database import make_engine, upgrade
from iris_prompt.store.service import Store, store_config


def main() -> None:
    port, mode = int(sys.argv[1]), sys.argv[2]
    folder = Path(tempfile.mkdtemp(prefix="iris-bench-"))
    url = sys.argv[3] if mode == "postgresql" else None
    if url is not None:
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
    settings = Settings(
        local_mode=True,
        log_level="WARNING",
        data_dir=folder,
        database_url=url,
        pseudonym_key="k" * 32,
    )
    store = Store.open(store_config(settings))
    codesets = CodeSetRegistry(default_codesets_dir(), checks=SERVICE_CHECKS)
    engine = Engine.from_settings(codesets, settings, None if mode == "none" else store)
    app = create_app(
        settings, registry=build_registry(codesets, engine), codesets=codesets, store=store
    )
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
