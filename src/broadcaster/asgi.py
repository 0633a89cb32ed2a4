"""The ASGI entry point served by uvicorn: `broadcaster.asgi:app`.

The FastAPI app sits behind the public fast path, which answers the banner endpoints from
pre-rendered bytes in memory (see broadcaster.public.fastpath).
"""

from __future__ import annotations

from broadcaster.app import create_app
from broadcaster.public.fastpath import PublicFastPath

fastapi_app = create_app()
app = PublicFastPath(fastapi_app)
