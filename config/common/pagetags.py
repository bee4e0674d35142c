"""Template tags for the pages (`{% load tanhui %}`): translated labels for the registry's code words, the
signed-in user's roles, figures grouped for people."""

from django import template
from django.template.defaultfilters import floatformat
from django.utils.translation import gettext_lazy as _

from config.common.roles import user_roles

register = template.Library()

# Code words stored in the database or the ledger, shown to people in their language.
LABELS = {
    # accounting run status
    "queued": _("queued"),
    "running": _("running"),
    "succeeded": _("succeeded"),
    "failed": _("failed"),
    # asset and pledge status
    "registered": _("registered"),
    "confirmed": _("confirmed (rights verified)"),
    "retired": _("retired"),
    "active": _("active"),
    "released": _("released"),
    "enforced": _("enforced"),
    # rights types
    "forest_land_ownership": _("forest land ownership"),
    "forest_land_use": _("forest land use right"),
    "forest_tree_ownership": _("forest tree ownership"),
    "forest_tree_use": _("forest tree use right"),
    "grassland_contract": _("grassland contract right"),
    # carbon pools
    "c_above": _("above-ground biomass"),
    "c_below": _("below-ground biomass"),
    "c_soil": _("soil organic carbon"),
    "c_dead": _("dead wood and litter"),
    # party kinds
    "collective": _("village collective"),
    "company": _("company"),
    "household": _("household"),
    "individual": _("individual"),
    "bank": _("bank"),
    "exchange": _("exchange"),
    "bureau": _("ecology bureau"),
    "auditor": _("auditor"),
    # land-cover classes of the built-in legends (CLCD, ESA WorldCover)
    "Cropland": _("Cropland"),
    "Forest": _("Forest"),
    "Shrub": _("Shrub"),
    "Shrubland": _("Shrub"),
    "Grassland": _("Grassland"),
    "Water": _("Water"),
    "Snow / ice": _("Snow / ice"),
    "Barren": _("Barren"),
    "Impervious": _("Built-up (impervious)"),
    "Built-up": _("Built-up (impervious)"),
    "Wetland": _("Wetland"),
    "Tree cover": _("Forest"),
    "Permanent water bodies": _("Water"),
    # ledger entry kinds
    "party.create": _("party registered"),
    "asset.register": _("asset registered"),
    "asset.confirm": _("ownership confirmed"),
    "asset.value": _("valued"),
    "asset.transfer": _("transferred"),
    "asset.retire": _("retired"),
    "pledge.create": _("pledge registered"),
    "pledge.release": _("pledge released"),
    "pledge.enforce": _("pledge enforced"),
    # valuation price basis
    "tC": _("t C"),
    "tCO2e": _("t CO2e"),
}


@register.filter
def label(value):
    """The translated label of a code word; the value itself when it has none."""
    return LABELS.get(value, value)


@register.filter
def grouped(value, decimal_places=0):
    """A figure for people (hectares, t C, money): rounded half up to `decimal_places` fixed decimals, thousands
    grouped the active language's way, e.g. 1,589,529.00 in English and in Chinese (config/formats/zh_Hans sets
    the comma; Django's own Chinese format groups nothing). Codes, years, ids and tree sizes are not figures:
    they stay as they are (settings leave USE_THOUSAND_SEPARATOR off). Not a number: ""."""
    return floatformat(value, f"{int(decimal_places)}g")


@register.simple_tag(takes_context=True)
def roles_of_user(context):
    """The signed-in user's roles, e.g. {"bureau"}."""
    request = context.get("request")
    return user_roles(request.user) if request is not None else set()
