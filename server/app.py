"""The app factory: `uvicorn --factory server.app:create_app` or `python -m server`."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from server import api
from server.classroom import routes as classroom_routes
from server.classroom.service import Classroom
from server.classroom.student import Student
from server.config import Settings
from server.errors import ClientError
from server.exitsignals import drain_before_exit
from server.hosts import AllowedHosts
from server.service import Service
from server.socketcaps import SocketCaps
from server.ws import stream_endpoint


def create_app(settings: Settings | None = None, service: Service | None = None) -> Starlette:
    settings = settings or Settings.from_env()
    service = service or Service(settings)
    classroom = Classroom.from_settings(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # uvicorn serves nothing, /healthz included, until the model is loaded and warm
        await service.start()
        await classroom.start()
        stop_draining_on_signals = drain_before_exit(service.drain)
        try:
            yield
        finally:
            stop_draining_on_signals()
            # Connections first, so their seats are released (shown away) while the room store
            # is still there; then the store; then the model.
            await service.drain()
            await classroom.stop()
            service.stop()

    routes = [
        WebSocketRoute("/ws", stream_endpoint(sessions=[lambda connection: Student(classroom, connection)])),
        Route("/api/classify", api.classify, methods=["POST"]),
        Route("/healthz", api.healthz),
        Route("/metrics", api.metrics),
        *classroom_routes.ROUTES,
        Mount("/", StaticFiles(directory=settings.web_dir, html=True), name="web"),
    ]
    middleware = [
        Middleware(AllowedHosts, names=settings.allowed_hosts),
        Middleware(
            SocketCaps,
            total=settings.max_connections,
            per_address=settings.max_connections_per_address,
            metrics=service.metrics,
        ),
    ]
    app = Starlette(
        routes=routes, middleware=middleware, lifespan=lifespan, exception_handlers={ClientError: api.client_error}
    )
    app.state.service = service
    app.state.classroom = classroom
    return app
