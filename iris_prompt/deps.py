"""FastAPI dependency aliases for routes of this product: the app's own settings and services.

They read the application's state (set by `create_app`), never a process-wide singleton.

    @router.get("/example")
    async def example(settings: SettingsDep) -> dict[str, str]: ...
"""

from typing import Annotated

from fastapi import Depends, Request

from cds_hooks import FeedbackStore, ServiceRegistry
from iris_prompt.settings import Settings

__all__ = ["FeedbackStoreDep", "RegistryDep", "SettingsDep"]


def app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def app_registry(request: Request) -> ServiceRegistry:
    registry: ServiceRegistry = request.app.state.registry
    return registry


def app_feedback_store(request: Request) -> FeedbackStore:
    store: FeedbackStore = request.app.state.feedback_store
    return store


SettingsDep = Annotated[Settings, Depends(app_settings)]
RegistryDep = Annotated[ServiceRegistry, Depends(app_registry)]
FeedbackStoreDep = Annotated[FeedbackStore, Depends(app_feedback_store)]
