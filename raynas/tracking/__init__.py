"""raynas.tracking"""
