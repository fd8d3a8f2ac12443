"""The app factory: `uvicorn --factory server.app:create_app` or `python -m server`."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from server import api
from server.classroom.student import Student
from server.classroom import routes as classroom_routes
from server.classroom.service import Classroom
from server.config import Settings
from server.errors import ClientError
from server.service import Service
from server.ws import stream_endpoint


def create_app(settings: Settings | None = None, service: Service | None = None) -> Starlette:
    settings = settings or Settings.from_env()
    service = service or Service(settings)
    classroom = Classroom.from_settings(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # uvicorn serves nothing, /healthz included, until the model is loaded and warm
        await service.start()
        classroom.start()
        try:
            yield
        finally:
            await classroom.stop()
            await service.drain()
            service.stop()

    routes = [
        WebSocketRoute("/ws", stream_endpoint(sessions=[lambda connection: Student(classroom, connection)])),
        Route("/api/classify", api.classify, methods=["POST"]),
        Route("/healthz", api.healthz),
        Route("/metrics", api.metrics),
        *classroom_routes.ROUTES,
        Mount("/", StaticFiles(directory=settings.web_dir, html=True), name="web"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={ClientError: api.client_error})
    app.state.service = service
    app.state.classroom = classroom
    return app
