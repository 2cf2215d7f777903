"""HTTP routes of the importers: staff send a catalog export, the answer is the report."""

from __future__ import annotations

from litestar import Router, post
from litestar.params import JSONBody

from emporium.accounts.audiences import STAFF
from emporium.core.config import SettingsDep
from emporium.core.db.uow import DbSession
from emporium.core.errors import problem_responses
from emporium.core.http.routing import audience_router
from emporium.importers import service
from emporium.importers.service import ImportReportOut, ShopifyCsvImport


@post(
    "/imports/shopify-csv",
    status_code=200,
    summary="Import a Shopify product CSV export",
    responses=problem_responses(415, 422),
    opt={"api_scope": "catalog:write"},
)
async def import_shopify_csv(
    session: DbSession, settings: SettingsDep, data: JSONBody[ShopifyCsvImport]
) -> ImportReportOut:
    """Staff: import ``csv`` (at most 1,000,000 characters) as ``emporium import shopify-csv``
    does; answers the importer's report. A problem anywhere: 422 ``import_invalid`` with
    ``errors`` (``loc`` is ``line N``) and nothing imported, unless ``skip_invalid``."""
    return await service.import_shopify_csv(session, data, currency=settings.currency)


importers_router = Router(
    path="/",
    route_handlers=[
        audience_router(STAFF, tags=["imports"], route_handlers=[import_shopify_csv]),
    ],
)
