"""Layer kinds: what each kind of layer holds, which file fields feed it, and its code lists.

A kind's attributes are validated and typed on upload and stored as ``attrs``; every other
field of the source file is kept unchanged as ``props``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from core.errors import InvalidInput

AttrType = Literal["int", "text", "float"]
GeometryKind = Literal["polygon", "point", "polygon_or_point", "any", "raster"]


@dataclass(frozen=True)
class Attribute:
    """One typed attribute of a kind."""

    name: str
    type: AttrType
    aliases: tuple[str, ...] = ()
    codelist: str | None = None
    description: str = ""

    @property
    def recognised(self) -> tuple[str, ...]:
        """Source field names that map to this attribute without being told."""
        return (self.name, *self.aliases)


@dataclass(frozen=True)
class LayerKind:
    """A kind of layer and its typed schema."""

    name: str
    title: str
    geometry: GeometryKind
    attributes: tuple[Attribute, ...] = ()
    # Each group lists attributes of which at least one must be present in the file.
    required_any: tuple[tuple[str, ...], ...] = ()
    description: str = ""
    unit: str | None = None  # rasters: what a pixel value means
    # Layers of a many-layer file (GML, SOSI products) taken without asking, in this order.
    preferred_layers: tuple[str, ...] = ()
    # Integer attributes that big layers index for filters (the class a map is styled by).
    filter_indexed: tuple[str, ...] = ()

    @property
    def is_raster(self) -> bool:
        """Raster kinds are stored as Cloud-Optimised GeoTIFFs, not as features."""
        return self.geometry == "raster"

    def attribute(self, name: str) -> Attribute:
        """Look up an attribute by name."""
        for attr in self.attributes:
            if attr.name == name:
                return attr
        raise KeyError(name)


KINDS: dict[str, LayerKind] = {
    k.name: k
    for k in (
        LayerKind(
            name="land_cover",
            title="Land cover (AR5 or N50 arealdekke)",
            geometry="polygon",
            attributes=(
                Attribute("arealtype", "int", ("ARTYPE", "arealressursarealtype"), "ar5_arealtype"),
                Attribute("skogbonitet", "int", ("ARSKOGBON",), "ar5_skogbonitet"),
                Attribute("treslag", "int", ("ARTRESLAG",), "ar5_treslag"),
                Attribute("grunnforhold", "int", ("ARGRUNNF",), "ar5_grunnforhold"),
                Attribute(
                    "n50_klasse",
                    "int",
                    ("klasse", "arealdekke", "n50klasse", "objekttypenavn"),
                    "n50_arealdekke",
                    "N50 arealdekke class; AR5 arealtype is derived from it when absent",
                ),
            ),
            required_any=(("arealtype", "n50_klasse"),),
            filter_indexed=("arealtype",),
        ),
        LayerKind(
            name="land_use_plan",
            title="Land-use plan (kommuneplanens arealdel, reguleringsplan)",
            geometry="polygon",
            attributes=(
                Attribute(
                    "arealformal",
                    "int",
                    (
                        "KPAREALFORMÅL",
                        "RPAREALFORMÅL",
                        "KPAREALFORMAL",
                        "RPAREALFORMAL",
                        "KPAREALFOR",  # Shapefile field names stop at 10 characters
                        "RPAREALFOR",
                        "arealformål",
                        "formal",
                        "formål",
                    ),
                    "arealformal",
                ),
                Attribute("plan_id", "text", ("PLANID", "planidentifikasjon", "planident")),
                Attribute("kommunenummer", "text", ("KOMM", "kommunenr", "komm")),
                Attribute("plan_type", "int", ("PLANTYPE", "plantype"), "plan_type"),
                Attribute("plan_status", "int", ("PLANSTAT", "planstatus"), "plan_status"),
                Attribute("plan_name", "text", ("PLANNAVN", "plannavn")),
                Attribute(
                    "feltnavn",
                    "text",
                    ("OMRÅDENAVN", "områdenavn", "FELTNAVN", "feltbetegnelse", "FELTBETEGNELSE"),
                ),
                Attribute(
                    "boliger_per_daa",
                    "float",
                    ("boligtetthet", "BOLIGTETTHET", "bolig_per_daa", "boenheter_per_daa"),
                    description="Planned dwellings per daa in the zone (land account)",
                ),
            ),
            required_any=(("arealformal",),),
            filter_indexed=("arealformal",),
            # Plan 5.0 GML and SOSI Plan: the arealformål areas among the plan's objects.
            preferred_layers=("RpArealformålOmråde", "KpArealformålOmråde"),
        ),
        LayerKind(
            name="nature_types",
            title="Nature types (NiN instruks, DN-håndbok 13, utvalgte naturtyper)",
            geometry="polygon",
            attributes=(
                Attribute("naturtype", "text", ("naturtypekode", "naturtype_kode", "ntype")),
                Attribute("naturtype_navn", "text", ("naturtypenavn",)),
                Attribute("lokalitetskvalitet", "text", ("lokalitetskval",), "lokalitetskvalitet"),
                Attribute("verdi", "text", ("bmverdi", "dn13_verdi", "naturverdi"), "dn13_verdi"),
                Attribute(
                    "ku_verdi",
                    "text",
                    ("kuverdi", "KUVERDI", "ku_verdi_tekst"),
                    description="Value for impact assessment (M-1941 category)",
                ),
                Attribute(
                    "utvalgt",
                    "text",
                    ("utvalgt_naturtype", "utvalgtnaturtype"),
                    "utvalgte_naturtyper",
                ),
                Attribute("naturbase_id", "text", ("ID", "lokalid", "identifikasjon")),
            ),
        ),
        LayerKind(
            name="peat",
            title="Peat: mire polygons with depth class, or depth probe points",
            geometry="polygon_or_point",
            attributes=(
                Attribute(
                    "depth_class", "text", ("dybdeklasse", "torvdybdeklasse"), "peat_depth_class"
                ),
                Attribute("depth_cm", "float", ("torvdybde_cm", "dybde_cm", "torvdybde")),
            ),
        ),
        LayerKind(
            name="degraded_areas",
            title="Degraded areas (restoration baseline)",
            geometry="polygon",
            attributes=(
                Attribute("ecosystem_type", "text", ("okosystem", "økosystem"), "ecosystem_type"),
                Attribute("degradation_driver", "text", ("driver", "paavirkning", "påvirkning")),
                Attribute("baseline_year", "int", ("basisaar", "basisår")),
            ),
            required_any=(("ecosystem_type",),),
        ),
        LayerKind(
            name="protected_areas",
            title="Protected areas (verneområder)",
            geometry="polygon",
            attributes=(
                Attribute("navn", "text", ("name", "offisieltnavn")),
                Attribute("verneform", "text", ("protection_form",)),
                Attribute("vernedato", "text", ("protected_date", "vernedato_dato")),
            ),
        ),
        LayerKind(
            name="boundaries",
            title="Administrative boundaries (kommune, fylke)",
            geometry="polygon",
            attributes=(
                Attribute("kommunenummer", "text", ("kommunenr", "KOMM")),
                Attribute("fylkesnummer", "text", ("fylkesnr",)),
                Attribute("navn", "text", ("kommunenavn", "fylkesnavn", "name")),
            ),
            required_any=(("kommunenummer", "fylkesnummer"),),
        ),
        LayerKind(
            name="generic",
            title="Any other vector layer (properties kept as they are)",
            geometry="any",
        ),
        LayerKind(
            name="carbon_density",
            title="Carbon density raster (t C/ha)",
            geometry="raster",
            unit="t C/ha",
        ),
        LayerKind(
            name="peat_depth",
            title="Peat depth raster (m)",
            geometry="raster",
            unit="m",
        ),
    )
}


def get_kind(name: str) -> LayerKind:
    """The kind called ``name``, or an error that lists the kinds there are."""
    try:
        return KINDS[name]
    except KeyError:
        raise InvalidInput(
            f"Unknown layer kind {name!r}. Choose one of: {', '.join(KINDS)}.",
            code="unknown_kind",
        ) from None


def resolve_field_map(
    kind: LayerKind, source_fields: list[str], explicit: dict[str, str] | None = None
) -> dict[str, str]:
    """Which source field feeds each attribute: explicit choices first, then known names."""
    explicit = explicit or {}
    by_folded = {f.casefold(): f for f in source_fields}
    mapping: dict[str, str] = {}
    for attr_name, source in explicit.items():
        if attr_name not in {a.name for a in kind.attributes}:
            raise InvalidInput(
                f"field_map names {attr_name!r}, which is not an attribute of {kind.name} "
                f"layers (they have: {', '.join(a.name for a in kind.attributes) or 'none'}).",
                code="bad_field_map",
            )
        if source.casefold() not in by_folded:
            raise InvalidInput(
                f"field_map maps {attr_name!r} to {source!r}, but the file has no such field. "
                f"Its fields are: {', '.join(source_fields)}.",
                code="bad_field_map",
            )
        mapping[attr_name] = by_folded[source.casefold()]
    for attr in kind.attributes:
        if attr.name in mapping:
            continue
        for candidate in attr.recognised:
            if candidate.casefold() in by_folded:
                mapping[attr.name] = by_folded[candidate.casefold()]
                break
    for group in kind.required_any:
        if not any(name in mapping for name in group):
            wanted = " or ".join(
                f"{name} (recognised: {', '.join(kind.attribute(name).recognised)})"
                for name in group
            )
            raise InvalidInput(
                f"A {kind.name} layer needs {wanted}, but none of those fields is in the file "
                f"(its fields: {', '.join(source_fields) or 'none'}). Map one with field_map, "
                f'e.g. {{"{group[0]}": "<your field>"}}.',
                code="missing_field",
            )
    return mapping
