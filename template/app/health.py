"""`GET /healthz`: the process is up and serving. Cheap and self-contained on purpose (no
provider, no session store), for container health checks and load balancers."""

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}
