"""raynas.nets"""
