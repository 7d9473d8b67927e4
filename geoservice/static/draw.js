// Drawing the site of a proposal: Leaflet.draw writes the polygons as GeoJSON (lon/lat)
// into the form's hidden "footprint" field. Without JavaScript the file field still works.
(function () {
  "use strict";
  var el = document.getElementById("draw-map");
  var field = document.getElementById("footprint");
  var said = document.getElementById("drawn");
  if (!el || !field || typeof L === "undefined") { return; }
  var map = L.map(el).setView([59.66, 10.79], 13);
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
