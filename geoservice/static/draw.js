// Drawing the site of a proposal: Leaflet.draw writes the polygons as GeoJSON (lon/lat)
// into the form's hidden "footprint" field. Without JavaScript the file field still works.
(function () {
  "use strict";
  var el = document.getElementById("draw-map");
  var field = document.getElementById("footprint");
  var said = document.getElementById("drawn");
  if (!el || !field || typeof L === "undefined") { return; }
  var map = L.map(el).setView([59.66, 10.79], 13);
  if (el.dataset.basemap) {
    L.tileLayer(el.dataset.basemap, { maxZoom: 20, maxNativeZoom: 18,
      attribution: "&copy; Kartverket" }).addTo(map);
  }
  if (el.dataset.land && L.vectorGrid) {  // the land cover, outlined, for orientation
    L.vectorGrid.protobuf(el.dataset.land, {
      vectorTileLayerStyles: { features: { weight: 1, color: "#4d7c0f", fill: true,
        fillColor: "#a3c585", fillOpacity: 0.25 } }, maxNativeZoom: 18
    }).addTo(map);
  }
  var drawn = new L.FeatureGroup().addTo(map);
  map.addControl(new L.Control.Draw({
    draw: { polyline: false, circle: false, circlemarker: false, marker: false,
            rectangle: { shapeOptions: { color: "#a50f15" } },
            polygon: { allowIntersection: false, shapeOptions: { color: "#a50f15" } } },
    edit: { featureGroup: drawn }
  }));
  function write() {
    var collection = drawn.toGeoJSON();
    field.value = collection.features.length ? JSON.stringify(collection) : "";
    said.textContent = collection.features.length
      ? (document.documentElement.lang === "en" ? "Drawn areas: " : "Tegnede flater: ") + collection.features.length
      : "";
  }
  if (field.value) {
    try { L.geoJSON(JSON.parse(field.value)).eachLayer(function (l) { drawn.addLayer(l); }); map.fitBounds(drawn.getBounds()); write(); }
    catch (e) { field.value = ""; }
  }
  map.on(L.Draw.Event.CREATED, function (e) { drawn.addLayer(e.layer); write(); });
  map.on(L.Draw.Event.EDITED, write);
  map.on(L.Draw.Event.DELETED, write);
  window.geoserviceDrawMap = map;  // for the browser tests
  window.geoserviceDrawn = drawn;
})();
