"""The EN 16931 e-invoice (UN/CEFACT CII, as XRechnung and ZUGFeRD/Factur-X carry it), validated against
the EN 16931 schema the drafthorse library ships before it leaves. Pure (no I/O but the schema file).

A credit note (type code 381) states positive amounts, as EN 16931 wants: the type code is the sign.
It names the invoice it corrects (BT-25).
"""
from __future__ import annotations

import threading
from decimal import Decimal
from functools import cache
from pathlib import Path

import drafthorse
from drafthorse.models.accounting import ApplicableTradeTax
from drafthorse.models.document import Document
from drafthorse.models.party import TaxRegistration
from drafthorse.models.payment import PaymentMeans
from lxml import etree

from handlers.invoices.document import DocLine, InvoiceDoc, Party, amount
from handlers.invoices.money import TYPE_CODES, decimal_text

SCHEMA = Path(drafthorse.__file__).parent / "schema" / "Factur-X_1.0.07_EN16931.xsd"
RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
UDT = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"
GUIDELINE = "urn:cen.eu:en16931:2017"
SEPA_TRANSFER = "58"  # UNTDID 4461: SEPA credit transfer
PIECE = "C62"  # UN/ECE Rec 20: one (unit)
STANDARD, EXEMPT = "S", "E"  # UNTDID 5305 VAT categories


def render_xml(doc: InvoiceDoc, exemption_reason: str) -> bytes:
    """The invoice as CII XML, checked against the EN 16931 schema (etree.DocumentInvalid if it fails).

    drafthorse writes the header, the parties and the totals; the lines are written with lxml in exactly
    drafthorse's shape, as drafthorse's object model takes about a millisecond per line.
    """
    sign = -1 if doc.credit else 1
    xml = Document()
    xml.context.guideline_parameter.id = GUIDELINE
    xml.header.id = doc.number
    xml.header.type_code = TYPE_CODES[doc.kind]
    xml.header.issue_date_time = doc.issue_date
    agreement, settlement = xml.trade.agreement, xml.trade.settlement
    agreement.buyer_reference = doc.buyer_reference or doc.number  # BT-10: the buyer's routing id, if any
    _party(agreement.seller, doc.seller)
    if doc.seller.tax_id:
        scheme = "VA" if doc.seller.tax_id[:2].isalpha() else "FC"  # USt-IdNr. (BT-31) or Steuernummer (BT-32)
        agreement.seller.tax_registrations.add(TaxRegistration(id=(scheme, doc.seller.tax_id)))
    _party(agreement.buyer, doc.buyer)
    if doc.period_start:
        xml.trade.delivery.event.occurrence = doc.period_start
    settlement.currency_code = doc.currency
    settlement.payment_reference = doc.number
    if not doc.credit:
        means = PaymentMeans()
        means.type_code = SEPA_TRANSFER
        means.payee_account.iban = doc.iban
        means.payee_institution.bic = doc.bic
        settlement.payment_means.add(means)
    category = STANDARD if doc.vat_percent > 0 else EXEMPT
    tax = ApplicableTradeTax()
    tax.calculated_amount = amount(sign * doc.vat_cents)
    tax.type_code = "VAT"
    if category == EXEMPT:
        tax.exemption_reason = exemption_reason
    tax.basis_amount = amount(sign * doc.net_cents)
    tax.category_code = category
    tax.rate_applicable_percent = doc.vat_percent
    settlement.trade_tax.add(tax)
    if doc.period_start and doc.period_end:
        settlement.period.start = doc.period_start
        settlement.period.end = doc.period_end
    totals = settlement.monetary_summation
    totals.line_total = amount(sign * doc.net_cents)
    totals.charge_total = Decimal("0.00")
    totals.allowance_total = Decimal("0.00")
    totals.tax_basis_total = amount(sign * doc.net_cents)
    totals.tax_total = (amount(sign * doc.vat_cents), doc.currency)
    totals.grand_total = amount(sign * doc.gross_cents)
    totals.due_amount = amount(sign * doc.gross_cents)
    if doc.corrects:
        settlement.invoice_referenced_document.issuer_assigned_id = doc.corrects
    root = etree.fromstring(xml.serialize(schema=None))
    transaction = root[-1]  # rsm:SupplyChainTradeTransaction: its line items come before the agreement
    for at, line in enumerate(doc.lines):
        transaction.insert(at, _item(line, sign, category, doc.vat_percent))
    with _schema_lock:
        schema().assertValid(root)
    return etree.tostring(root, pretty_print=True, xml_declaration=True, encoding="UTF-8")


_schema_lock = threading.Lock()  # one lxml validator is not to be used by two threads at once


@cache
def schema() -> etree.XMLSchema:
    """The EN 16931 CII schema as drafthorse ships it, read once."""
    return etree.XMLSchema(etree.parse(str(SCHEMA)))


def _party(target, party: Party) -> None:
    target.name = party.name
    address = party.address
    target.address.line_one = address.lines[0] if address.lines else None
    if len(address.lines) > 1:
        target.address.line_two = ", ".join(address.lines[1:])
    target.address.postcode = address.postcode or None
    target.address.city_name = address.city or None
    target.address.country_id = address.country


def _el(parent, tag: str, text: str | None = None, **attrs: str):
    element = etree.SubElement(parent, f"{{{RAM}}}{tag}", attrs)
    if text is not None:
        element.text = text
    return element


def _day(parent, tag: str, value) -> None:
    etree.SubElement(_el(parent, tag), f"{{{UDT}}}DateTimeString", format="102").text = value.strftime("%Y%m%d")


def _item(line: DocLine, sign: int, category: str, rate: Decimal):
    """One IncludedSupplyChainTradeLineItem (BG-25): id, name, net price, quantity, VAT, period, total."""
    item = etree.Element(f"{{{RAM}}}IncludedSupplyChainTradeLineItem")
    _el(_el(item, "AssociatedDocumentLineDocument"), "LineID", str(line.position))
    _el(_el(item, "SpecifiedTradeProduct"), "Name", line.description)
    price = _el(_el(item, "SpecifiedLineTradeAgreement"), "NetPriceProductTradePrice")
    _el(price, "ChargeAmount", decimal_text(sign * line.unit_cents))
    _el(_el(item, "SpecifiedLineTradeDelivery"), "BilledQuantity", str(line.quantity), unitCode=PIECE)
    settlement = _el(item, "SpecifiedLineTradeSettlement")
    tax = _el(settlement, "ApplicableTradeTax")
    _el(tax, "TypeCode", "VAT")
    _el(tax, "CategoryCode", category)
    _el(tax, "RateApplicablePercent", str(rate))
    if line.period_start and line.period_end:
        period = _el(settlement, "BillingSpecifiedPeriod")
        _day(period, "StartDateTime", line.period_start)
        _day(period, "EndDateTime", line.period_end)
    _el(_el(settlement, "SpecifiedTradeSettlementLineMonetarySummation"), "LineTotalAmount",
        decimal_text(sign * line.amount_cents))
    return item
