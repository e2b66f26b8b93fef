"""The admin refuses an offer whose SKU the stock feed's URL could not carry, naming the field."""

from __future__ import annotations

from personalization.models import Offer


def test_a_sku_with_a_slash_is_refused_on_the_offer_form(staff_page, browser_staff_user, site, screenshot):
    browser_staff_user.is_superuser = True
    browser_staff_user.save(update_fields=["is_superuser"])
    page = staff_page
    page.goto("/admin/personalization/offer/add/")
    page.select_option("#id_site", str(site.pk))
    page.fill("#id_name", "Wireless earbuds")
    page.fill("#id_sku", "EB/200")
    page.fill("#id_price", "49.90")

    page.click("input[name=_save]")

    error = page.locator(".field-sku .errorlist").inner_text()
    screenshot(page, "admin-offer-sku-refused")
    assert (
        error
        == "Use 1 to 64 of the characters A-Z a-z 0-9 - _ . ~ (usable in a URL as they are), not starting with '.'."
    )
    assert Offer.objects.count() == 0
