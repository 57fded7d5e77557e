"""raynas.tune"""
