"""Folium map builders and styles."""
