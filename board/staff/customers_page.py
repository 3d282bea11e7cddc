"""The customer list: every customer, found by name, email or customer number."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from board.staff import customers
from board.web import db, page_count, page_number, render, require_staff

PER_PAGE = 30


async def customer_list(request: Request) -> Response:
    require_staff(request)
    lookup = customers.read_lookup(request.query_params.get("q", ""))
    total = await customers.customers_total(db(request), lookup)
    pages = page_count(total, PER_PAGE)
    page = min(page_number(request), pages)  # a page past the last shows the last one
    rows = await customers.customers_page(db(request), lookup, page, PER_PAGE)
    return render(
        request,
        "staff/customers.html",
        rows=rows,
        query=lookup.text,
        total=total,
        page=page,
        pages=pages,
    )


routes = [Route("/staff/customers", customer_list, name="staff_customers")]
