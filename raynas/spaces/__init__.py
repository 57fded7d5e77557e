"""raynas.spaces"""
