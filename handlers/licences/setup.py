"""[[products]] of the setup file applied: products added or brought in line by name, idempotently (a product
missing from the file stays: licences refer to it)."""
from __future__ import annotations

import re

from sqlalchemy import select

from handlers.setup.spec import PRODUCT_KEYS, ProductSpec, SetupSpec
from storage.db import UnitOfWork
from storage.models import Product

FIELDS = ("price_per_school", "single_price", "term_months", "renewal_notice_days", "invoice_after_days")


async def apply_products(uow: UnitOfWork, spec: SetupSpec, changes: list[str]) -> None:
    """Every [[products]] entry; one line per change into `changes`."""
    for product in spec.products:
        row = await uow.session.scalar(select(Product).where(Product.name == product.name))
        if row is None:
            uow.session.add(Product(name=product.name, **values_of(product)))
            changes.append(f"+ product {product.name} ({product.price_per_school} per school)")
            continue
        notes = [f"{key} {getattr(row, key)} → {value}" for key, value in values_of(product).items()
                 if getattr(row, key) != value]
        for key, value in values_of(product).items():
            setattr(row, key, value)
        if notes:
            changes.append(f"~ product {product.name}: {', '.join(notes)}")
    await uow.session.flush()


def read_product(table, price_pattern: re.Pattern) -> ProductSpec:
    """name, price_per_school, optional single_price, term_months [12], renewal_notice_days [42],
    invoice_after_days [7]; `table` is the setup reader's table (its errors name file, line and key)."""
    table.check_keys(PRODUCT_KEYS)
    return ProductSpec(table.text("name"), money(table, "price_per_school", True, price_pattern) or "0",
                       money(table, "single_price", False, price_pattern), table.integer("term_months", 1, 12),
                       table.integer("renewal_notice_days", 0, 42), table.integer("invoice_after_days", 0, 7))


def money(table, key: str, required: bool, pattern: re.Pattern) -> str | None:
    value = table.raw(key, required)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not pattern.match(value.strip()):
        table.bad((key,), value, 'is not a price; write it as a string like "65.00"')
    return value.strip()


def values_of(product: ProductSpec) -> dict:
    return {key: getattr(product, key) for key in FIELDS}
