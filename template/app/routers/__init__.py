"""Your routers. Every module in this folder that has a `router` (a FastAPI `APIRouter`)
is included in the app, in the order of the module names:

    # app/routers/orders.py
    from fastapi import APIRouter

    from app.auth import CurrentUser

    router = APIRouter(prefix="/orders", tags=["orders"])

    @router.get("/")
    async def list_orders(user: CurrentUser) -> list[dict[str, str]]: ...

The template created this file and never writes in this folder again: `copier update`
leaves everything here to you.
"""
